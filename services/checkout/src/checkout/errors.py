"""Checkout's errors, worded as the contract words them (docs/api.md "Checkout")."""

from bos_common.errors import (
    BOSError,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)


def checkout_not_found() -> BOSError:
    return NotFound("checkout_not_found", "Checkout session not found.")


def checkout_expired() -> BOSError:
    return InvalidRequest(
        "checkout_expired", "This checkout expired. Start again with a new checkout session."
    )


def checkout_in_progress() -> BOSError:
    return Conflict("checkout_in_progress", "A payment for this checkout is already in progress.")


def checkout_not_open(status: str) -> BOSError:
    if status == "expired":
        return checkout_expired()
    if status == "processing":
        return checkout_in_progress()
    if status == "complete":
        return Conflict("checkout_complete", "This checkout is already complete.")
    return Conflict("checkout_canceled", "This checkout was canceled.")


def not_your_checkout() -> BOSError:
    return PermissionDenied("forbidden", "This session cannot act on this checkout.")


def email_required() -> BOSError:
    return ValidationFailed("email_required", "Email required", param="customer.email")


def invalid_email() -> BOSError:
    return ValidationFailed("invalid_email", "Invalid email", param="customer.email")


def already_subscribed() -> BOSError:
    return Conflict("already_subscribed", "Already subscribed to this product")


def coupon_already_applied() -> BOSError:
    return InvalidRequest("coupon_already_applied", "Only one coupon allowed")


def not_free() -> BOSError:
    return InvalidRequest(
        "not_free", "This checkout is not free: confirm it with a payment method."
    )


def is_free() -> BOSError:
    return InvalidRequest("checkout_is_free", "This checkout is free: use confirm-free.")
