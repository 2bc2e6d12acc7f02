"""``expand[]``: replace id strings by the objects they name, along dotted paths.

Copy-on-write: stored objects are never modified; only the dicts on the path are copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import errors

Resolver = Callable[[str], dict[str, Any] | None]
MAX_DEPTH = 4
#: fields that hold the id of another object (Stripe documents them as "Expandable")
EXPANDABLE = frozenset(
    {
        "account", "application", "application_fee", "balance_transaction", "charge",
        "customer", "default_payment_method", "default_source", "destination",
        "destination_payment", "failure_balance_transaction", "latest_attempt",
        "latest_charge", "mandate", "on_behalf_of", "originating_transaction",
        "payment_intent", "payment_method", "review", "setup_intent", "source",
        "source_transaction", "source_transfer", "transfer", "transfer_reversal",
    }
)  # fmt: skip


def expand(obj: dict[str, Any], paths: list[str], resolve: Resolver) -> dict[str, Any]:
    for path in paths:
        parts = str(path).split(".")
        if len(parts) > MAX_DEPTH:
            raise errors.parameter_error(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        obj = _expand(obj, parts, resolve, str(path))
    return obj


def _expand(obj: dict[str, Any], parts: list[str], resolve: Resolver, path: str) -> Any:
    if not parts:
        return obj
    head, rest = parts[0], parts[1:]
    if obj.get("object") == "list" and head == "data":
        copied = dict(obj)
        copied["data"] = [_expand(item, rest, resolve, path) for item in obj["data"]]
        return copied
    if head not in obj:
        if head in EXPANDABLE:  # an optional field this object does not carry
            return obj
        raise _cannot(head)
    value = obj[head]
    if isinstance(value, str | None) and head not in EXPANDABLE:
        raise _cannot(head)
    if value is None:
        return obj
    if isinstance(value, str):
        target = resolve(value)
        if target is None:
            raise _cannot(head)
        value = target
    if not isinstance(value, dict):
        raise _cannot(head)
    copied = dict(obj)
    copied[head] = _expand(value, rest, resolve, path)
    return copied


def _cannot(field: str) -> errors.StripeError:
    return errors.parameter_error(f"This property cannot be expanded ({field}).", param="expand")
