"""The pages the fake Stripe.js frames from the simulator's origin, as Stripe.js frames
js.stripe.com: the card fields (``elements-inner-card.html``) and the 3D Secure challenge
(``three-d-secure.html``). The merchant page only talks to them with postMessage."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from . import errors
from .sim import Sim

FRAME_PAGES = ("elements-inner-card.html", "three-d-secure.html")


@functools.cache
def _page_source(name: str) -> str:
    return resources.files("stripe_sim").joinpath(f"static/{name}").read_text()


def frame_page(sim: Sim, request: Request, body: dict[str, Any]) -> Response:
    name = request.path_params["page"]
    if name not in FRAME_PAGES:
        raise errors.invalid_request(f"No such Stripe.js page: {name}", status=404)
    return HTMLResponse(_page_source(name), headers={"Cache-Control": "no-cache"})
