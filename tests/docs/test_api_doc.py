"""docs/api.md names every public route the services serve, and no route they do not
(unit, no servers): the routers are imported, nothing is started."""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The routers of every public route (the gateway forwards by path prefix to these).
ROUTERS = (
    "tokens.api",
    "catalog.api",
    "checkout.api",
    "checkout.page",
    "subscriptions.api",
    "webhooks.api",
    "webhooks.endpoints.api",
)
PUBLIC_PREFIXES = ("/v1/", "/admin/", "/checkout/", "/sdk/", "/portal")
DOCUMENTED = re.compile(r"`(GET|POST|PATCH|DELETE|PUT) (/[^` ?]*)")


def shape(path: str) -> str:
    """`/v1/products/{product_id}` and `/v1/products/{id}` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def served() -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for name in ROUTERS:
        for route in import_module(name).router.routes:
            path = getattr(route, "path", "")
            if not path.startswith(PUBLIC_PREFIXES):
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    routes.add((method, shape(path)))
    return routes


def documented() -> set[tuple[str, str]]:
    text = (ROOT / "docs/api.md").read_text()
    return {
        (method, shape(path))
        for method, path in DOCUMENTED.findall(text)
        if path.startswith(PUBLIC_PREFIXES)
    }


def test_every_public_route_is_in_the_api_doc() -> None:
    missing = sorted(served() - documented())
    assert missing == [], f"routes docs/api.md does not describe: {missing}"


def test_the_api_doc_names_no_route_that_does_not_exist() -> None:
    invented = sorted(documented() - served())
    assert invented == [], f"docs/api.md describes routes nobody serves: {invented}"
