"""Money rules of the catalog: integer minor units, ISO-4217 currencies, price figures.

Amounts are always integers in the currency's minor unit (cents for `usd`, yen for the
zero-decimal `jpy`), so the same arithmetic serves every currency. Coupon arithmetic is
`bos_common.coupons` (subscriptions discounts invoices with it too).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bos_common.coupons import round_half_up

# ISO-4217 codes (current, non-fund), lower case as the API spells them.
CURRENCIES = frozenset(
    """
    aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd btn
    bwp byn bzd cad cdf chf clp cny cop crc cuc cup cve czk djf dkk dop dzd egp ern etb eur
    fjd fkp gbp gel ghs gip gmd gnf gtq gyd hkd hnl hrk htg huf idr ils inr iqd irr isk jmd
    jod jpy kes kgs khr kmf kpw krw kwd kyd kzt lak lbp lkr lrd lsl lyd mad mdl mga mkd mmk
    mnt mop mru mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab pen pgk php pkr pln
    pyg qar ron rsd rub rwf sar sbd scr sdg sek sgd shp sle sll sos srd ssp stn svc syp szl
    thb tjs tmt tnd top try ttd twd tzs uah ugx usd uyu uzs vef ves vnd vuv wst xaf xcd xof
    xpf yer zar zmw zwl
    """.split()
)

# Currencies whose minor unit is the major unit (Stripe's list). Amounts in them are
# whole units: `2900` jpy is 2,900 yen.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())

MAX_AMOUNT = 99_999_999_999  # a sanity bound in minor units, far above any real price


def minor_unit_exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def monthly_equivalent(annual_amount: int) -> int:
    """What an annual price costs per month, rounded half-up to the minor unit."""
    return round_half_up(Decimal(annual_amount) / Decimal(12))


def annual_savings(annual_amount: int, monthly_amount: int) -> tuple[int, float] | None:
    """(amount saved per year, percent saved with two decimals) of an annual price versus
    twelve months of a monthly price, or None when the annual price saves nothing."""
    twelve = monthly_amount * 12
    saved = twelve - annual_amount
    if twelve <= 0 or saved <= 0:
        return None
    pct = (Decimal(saved) * 100 / Decimal(twelve)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return saved, float(pct)
