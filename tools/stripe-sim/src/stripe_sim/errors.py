"""Stripe-shaped errors: ``{"error": {"type", "code", "decline_code", "message", "param"}}``."""

from __future__ import annotations

from typing import Any

DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error rendered exactly like a Stripe API error body."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}
        #: what the request broke, for the request log: ``"parameters"`` (names, types, enum
        #: values), ``"version"`` (``Stripe-Version``), ``"rule"`` (a documented rule the spec
        #: cannot express) or ``"route"`` (no such URL); ``None`` for other errors (declines,
        #: missing objects, ...)
        self.refusal: str | None = None

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = DOC_BASE + self.code.replace("_", "-")
        if self.decline_code:
            err["decline_code"] = self.decline_code
        if self.param:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def parameter_error(
    message: str, *, param: str | None = None, code: str | None = None
) -> StripeError:
    """A 400 for a parameter's name, type or value (``refusal="parameters"``)."""
    exc = invalid_request(message, param=param, code=code)
    exc.refusal = "parameters"
    return exc


def rule_error(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    """A 400 for a rule Stripe documents beyond the spec (``refusal="rule"``)."""
    exc = invalid_request(message, param=param, code=code)
    exc.refusal = "rule"
    return exc


def missing_param(param: str) -> StripeError:
    return parameter_error(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def unknown_param(param: str) -> StripeError:
    return parameter_error(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def invalid_integer(param: str, value: object) -> StripeError:
    return parameter_error(
        f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
    )


def invalid_value(param: str, message: str) -> StripeError:
    return invalid_request(message, param=param, code="parameter_invalid_empty")


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """``resource_missing``: 404 for the path id, 400 when a parameter names a missing object."""
    return invalid_request(
        f"No such {kind}: '{object_id}'", param=param, code="resource_missing", status=status
    )


def unexpected_state(message: str, *, extra: dict[str, Any] | None = None) -> StripeError:
    return StripeError(
        400,
        "invalid_request_error",
        message,
        code="payment_intent_unexpected_state",
        extra=extra,
    )


def api_error(message: str = "An unknown error occurred") -> StripeError:
    return StripeError(500, "api_error", message)


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)
