"""Money arithmetic of checkout: integer minor units, half-up rounding."""

from decimal import ROUND_HALF_UP, Decimal


def platform_fee(amount: int, fee_bps: int) -> int:
    """`round(amount * bps / 10000)` half-up: $100.00 at 500 bps -> $5.00."""
    value = Decimal(amount) * Decimal(fee_bps) / Decimal(10_000)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
