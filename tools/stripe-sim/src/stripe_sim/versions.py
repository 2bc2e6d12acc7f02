"""``Stripe-Version``: which versions exist, how Stripe refuses others, and the behaviour that
depends on the version.

A request's version is its ``Stripe-Version`` header, else the account's default (the
simulator's ``STRIPE_SIM_API_VERSION``). Parameters are checked against the pinned version's
(the SDK's, ``param_schema.api_version()``) whatever the request's version.
"""

from __future__ import annotations

import re

from . import errors, param_schema

_FORMAT = re.compile(r"(\d{4}-\d{2}-\d{2})(\.[a-z]+)?\Z")

#: Released Stripe API versions (Stripe's API changelog), oldest first; the SDK's version and
#: the simulator's configured default are accepted too.
RELEASED = (
    "2017-08-15", "2018-02-28", "2018-05-21", "2018-09-24", "2018-11-08", "2019-02-19",
    "2019-03-14", "2019-05-16", "2019-08-14", "2019-09-09", "2019-10-08", "2019-10-17",
    "2019-11-05", "2019-12-03", "2020-03-02", "2020-08-27", "2022-08-01", "2022-11-15",
    "2023-08-16", "2023-10-16", "2024-04-10", "2024-06-20", "2024-09-30.acacia",
    "2024-10-28.acacia", "2024-11-20.acacia", "2024-12-18.acacia", "2025-01-27.acacia",
    "2025-02-24.acacia", "2025-03-31.basil", "2025-04-30.basil", "2025-05-28.basil",
    "2025-06-30.basil", "2025-07-30.basil", "2025-08-27.basil", "2025-09-30.clover",
)  # fmt: skip

#: Since this version PaymentIntents and SetupIntents enable automatic payment methods when
#: the request names neither ``automatic_payment_methods`` nor ``payment_method_types``.
AUTOMATIC_PAYMENT_METHODS_DEFAULT_SINCE = "2023-08-16"


def known_versions(default_version: str) -> frozenset[str]:
    return frozenset(RELEASED) | {param_schema.api_version(), default_version}


def invalid_version(value: str) -> errors.StripeError:
    exc = errors.invalid_request(f"Invalid Stripe API version: {value}")
    exc.refusal = "version"
    return exc


def check(value: str | None, known: frozenset[str]) -> str | None:
    """The request's ``Stripe-Version`` (``None`` when absent); 400 as Stripe for a malformed
    one, an unreleased one or one with a beta flag (``2020-08-27; x_beta=v1``)."""
    if value is None:
        return None
    if value not in known or not _FORMAT.match(value):
        raise invalid_version(value)
    return value


def automatic_payment_methods_by_default(version: str) -> bool:
    return version[:10] >= AUTOMATIC_PAYMENT_METHODS_DEFAULT_SINCE
