"""Merge the services' OpenAPI documents into the one the gateway publishes."""

from __future__ import annotations

import json
from typing import Any

from gateway.routing import is_public_path


def merge_openapi(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for service in sorted(docs):
        doc = _rename_clashing_schemas(docs[service], service, schemas)
        for path, item in doc.get("paths", {}).items():
            if is_public_path(path):
                paths[path] = {**paths.get(path, {}), **_tagged(item, service)}
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "BOS API",
            "version": "1",
            "description": "Checkout and subscriptions in front of Stripe. See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _tagged(item: dict[str, Any], service: str) -> dict[str, Any]:
    """Operations are grouped by the service that answers them (a generated client's
    modules), unless the service tagged them itself."""
    return {
        method: {**op, "tags": op.get("tags") or [service]} if isinstance(op, dict) else op
        for method, op in item.items()
    }


def _rename_clashing_schemas(
    doc: dict[str, Any], service: str, seen: dict[str, Any]
) -> dict[str, Any]:
    """Same-named but different models of two services must not overwrite each other:
    the later one is renamed `<Service><Name>` (title too: generators name classes after
    it) along with every reference to it."""
    own = doc.get("components", {}).get("schemas", {})
    clashes = [name for name, schema in own.items() if name in seen and seen[name] != schema]
    if not clashes:
        return doc
    text = json.dumps(doc)
    new_names = {name: f"{service.capitalize()}{name}" for name in clashes}
    for name, new in new_names.items():
        text = text.replace(f'"#/components/schemas/{name}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed["components"]["schemas"]
    for name, new in new_names.items():
        schemas[new] = {**schemas.pop(name), "title": new}
    return renamed
