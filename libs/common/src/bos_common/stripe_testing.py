"""A recording fake of Stripe's HTTP for tests: the real SDK (`stripe_client`) builds and
encodes every request as it would for Stripe, and `RecordingHTTPClient` keeps what went on
the wire (method, path, headers, form fields) and answers with canned objects.

    client, recorder = recording_client()
    ...  # the code under test calls Stripe through `client`
    assert recorder.last("POST", "/v1/refunds").form["reverse_transfer"] == "true"

Answers: `recorder.answer(method, path, body, status=...)` queues one (an error body with
a 4xx/5xx status makes the SDK raise as Stripe's would); otherwise `default_answer` builds a
plausible object for the paths BOS calls.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    headers: dict[str, str]
    form: dict[str, str]  # form-encoded body (POST) or query (GET), as Stripe receives them

    @property
    def stripe_version(self) -> str | None:
        return self.headers.get("Stripe-Version")

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass
class _Answer:
    status: int
    body: dict[str, Any]


def default_answer(method: str, path: str, form: Mapping[str, str]) -> dict[str, Any]:
    """A minimal successful Stripe object for the request (new objects get unique ids)."""
    n = uuid.uuid4().hex[:16]
    parts = path.strip("/").split("/")
    resource = parts[1] if len(parts) > 1 else ""
    object_id = parts[2] if len(parts) > 2 else None
    pm = form.get("payment_method")
    expanded_pm = {"id": pm, "object": "payment_method", "card": {"fingerprint": f"fp_{pm}"}}
    if resource == "customers":
        return {"id": object_id or f"cus_rec{n}", "object": "customer"}
    if resource == "payment_intents":
        return {
            "id": object_id or f"pi_rec{n}",
            "object": "payment_intent",
            "status": "succeeded",
            "amount": int(form.get("amount", 0)),
            "currency": form.get("currency", "usd"),
            "client_secret": "pi_rec_secret_rec",
            "latest_charge": "ch_rec",
            "payment_method": expanded_pm if pm else None,
        }
    if resource == "setup_intents":
        return {
            "id": object_id or f"seti_rec{n}",
            "object": "setup_intent",
            "status": "succeeded",
            "client_secret": "seti_rec_secret_rec",
            "payment_method": expanded_pm if pm else None,
        }
    if resource == "refunds":
        return {"id": f"re_rec{n}", "object": "refund", "status": "succeeded"}
    if resource == "transfers":
        return {"id": f"tr_rec{n}", "object": "transfer", "amount": int(form.get("amount", 0))}
    if resource in ("accounts", "account"):
        return {
            "id": object_id or "acct_platform",
            "object": "account",
            "country": "US",
            "charges_enabled": True,
            "payouts_enabled": True,
        }
    return {"id": f"{resource}_rec", "object": resource.rstrip("s")}


class RecordingHTTPClient(stripe.HTTPClient):
    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[RecordedRequest] = []
        self._answers: dict[tuple[str, str], deque[_Answer]] = defaultdict(deque)

    def answer(self, method: str, path: str, body: dict[str, Any], *, status: int = 200) -> None:
        """The next request to `method path` gets this answer (queued, used once)."""
        self._answers[(method.upper(), path)].append(_Answer(status, body))

    def error(
        self,
        method: str,
        path: str,
        status: int,
        code: str,
        *,
        type_: str = "invalid_request_error",
    ) -> None:
        """The next request to `method path` fails as Stripe would with this code."""
        body = {"error": {"type": type_, "code": code, "message": f"simulated {code}"}}
        self.answer(method, path, body, status=status)

    def calls(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.method == method.upper() and r.path.startswith(path_prefix)
        ]

    def last(self, method: str, path_prefix: str) -> RecordedRequest:
        found = self.calls(method, path_prefix)
        assert found, f"no {method} {path_prefix} was sent: {[r.path for r in self.requests]}"
        return found[-1]

    def _handle(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[bytes, int, Mapping[str, str]]:
        parts = urlsplit(url)
        raw = post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)
        form = dict(parse_qsl(raw or "", keep_blank_values=True))
        recorded = RecordedRequest(method.upper(), parts.path, dict(headers), form)
        self.requests.append(recorded)
        queued = self._answers.get((recorded.method, recorded.path))
        if queued:
            answer = queued.popleft()
        else:
            answer = _Answer(200, default_answer(recorded.method, recorded.path, form))
        body = json.dumps(answer.body).encode()
        return body, answer.status, {"Request-Id": f"req_rec_{len(self.requests)}"}

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        body, status, answer_headers = self._handle(method, url, headers or {}, post_data)
        return body.decode(), status, answer_headers

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        return self._handle(method, url, headers, post_data)

    def close(self) -> None:
        return None

    async def close_async(self) -> None:
        return None


def recording_client() -> tuple[stripe.StripeClient, RecordingHTTPClient]:
    """BOS's own `stripe_client`, its HTTP replaced by a recorder."""
    from bos_common.stripe_api import stripe_client

    recorder = RecordingHTTPClient()
    return stripe_client(
        "sk_test_recorded", "http://stripe.invalid", http_client=recorder
    ), recorder


# --- a page's Content-Security-Policy for Stripe.js (docs.stripe.com/security/guide) ------


def csp_directives(csp: str) -> dict[str, set[str]]:
    """A Content-Security-Policy's directives: name -> its sources."""
    parts = (d.strip().split() for d in csp.split(";") if d.strip())
    return {p[0]: set(p[1:]) for p in parts}


def assert_csp_allows_stripe_js(csp: str) -> dict[str, set[str]]:
    """`csp` lets Stripe's Stripe.js run with the sources Stripe documents: its script, its
    iframes (card fields, 3DS), its API. The directives, for further checks."""
    directives = csp_directives(csp)
    assert {"https://js.stripe.com", "https://*.js.stripe.com"} <= directives["script-src"]
    assert {
        "https://js.stripe.com",
        "https://*.js.stripe.com",
        "https://hooks.stripe.com",
    } <= directives["frame-src"]
    assert "https://api.stripe.com" in directives["connect-src"]
    return directives


def assert_csp_allows_simulated_stripe_js(csp: str, simulator: str) -> dict[str, set[str]]:
    """`csp` lets the Stripe simulator's Stripe.js (served from `simulator`, an origin) run:
    its script, its card iframe (the only frame), its API. The directives, for further
    checks."""
    directives = csp_directives(csp)
    assert simulator in directives["script-src"]
    assert directives["frame-src"] == {simulator}  # the card fields' iframe
    assert simulator in directives["connect-src"]
    return directives
