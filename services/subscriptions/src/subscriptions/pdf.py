"""Invoice PDFs (17.5), rendered with fpdf2: seller, customer, number, dates, lines,
discount, tax, totals in the currency's minor units formatted for the locale, and the
paid status."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from fpdf import FPDF

from subscriptions.rows import Invoice

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)
STATUS_LABEL = {"paid": "PAID", "open": "DUE", "void": "VOID", "uncollectible": "UNPAID"}
ACCENT = (37, 99, 235)


def parse_locale(value: str) -> str:
    """A normalized locale id ("de_DE"), or ValueError."""
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError, TypeError) as exc:
        raise ValueError(f"unknown locale {value!r}") from exc


def money(amount: int, currency: str, locale: str) -> str:
    """Minor units -> "$1,234.56" / "1.234,56 €" / "¥300" for the locale."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-get_currency_precision(code))
    return format_currency(value, code, locale=locale)


def _date(value: datetime | str | None, locale: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_date(value, format="medium", locale=locale)


@lru_cache(maxsize=4)
def _unicode_font(explicit: str | None) -> tuple[str, str | None] | None:
    paths = [explicit] if explicit else list(FONT_CANDIDATES)
    for path in paths:
        if path and os.path.exists(path):
            bold = path.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
            return path, bold if bold != path and os.path.exists(bold) else None
    return None


class _NeedsUnicodeFont(Exception):
    """The invoice has text outside Windows-1252, which the core fonts cannot show."""


class _Doc(FPDF):
    """An A4 invoice in the core fonts (Helvetica, nothing embedded) or, when `font` is
    given, in that TrueType font (parsed and subset into every document: far slower).
    With `strict`, text the core fonts cannot show raises `_NeedsUnicodeFont` instead of
    being replaced."""

    def __init__(self, font: tuple[str, str | None] | None, *, strict: bool = False) -> None:
        super().__init__(format="A4")
        self.unicode = font is not None
        self.strict = strict
        if font is not None:
            self.add_font("Body", "", font[0])
            self.add_font("Body", "B", font[1] or font[0])
            self.family_name = "Body"
        else:
            self.core_fonts_encoding = "windows-1252"
            self.family_name = "Helvetica"
        self.set_auto_page_break(auto=True, margin=18)

    def shows(self, text: str) -> bool:
        """Whether this document's font has every character of `text`."""
        if self.unicode:
            return True
        try:
            text.encode("cp1252")
        except UnicodeEncodeError:
            if self.strict:
                raise _NeedsUnicodeFont from None
            return False
        return True

    def safe(self, text: str) -> str:
        """Core fonts cover Windows-1252 only: anything else becomes '?' rather than a
        failed invoice (money is rendered with ISO codes in that case, see `amount`)."""
        if self.shows(text):
            return text
        return text.encode("cp1252", errors="replace").decode("cp1252")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)


def render_invoice_pdf(
    inv: Invoice,
    *,
    seller: str,
    locale: str = "en_US",
    font_path: str | None = None,
    seller_id: str | None = None,
) -> bytes:
    """The invoice as a PDF: in the core fonts when all its text is in Windows-1252 (most
    invoices; no font to embed), else in the Unicode font when there is one."""
    font = _unicode_font(font_path)
    try:
        return _render(_Doc(None, strict=font is not None), inv, seller, locale, seller_id)
    except _NeedsUnicodeFont:
        return _render(_Doc(font), inv, seller, locale, seller_id)


def _render(doc: _Doc, inv: Invoice, seller: str, locale: str, seller_id: str | None) -> bytes:
    def amount(value: int) -> str:
        text = money(value, inv.currency, locale)
        if not doc.shows(text):
            code = inv.currency.upper()
            digits = get_currency_precision(code)
            text = f"{Decimal(value).scaleb(-digits):,.{digits}f} {code}"
        return text

    doc.set_title(f"Invoice {inv.number}")
    doc.set_author(seller)
    doc.set_creator("BOS")
    doc.add_page()
    w = doc.epw

    # Header: seller and status
    doc.font(20, bold=True)
    doc.set_text_color(*ACCENT)
    doc.cell(w * 0.65, 10, doc.safe(seller))
    status = STATUS_LABEL.get(inv.status, inv.status.upper())
    doc.set_text_color(22, 163, 74) if inv.status == "paid" else doc.set_text_color(185, 28, 28)
    doc.cell(w * 0.35, 10, status, align="R", new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0, 0, 0)
    doc.font(10)
    if seller_id:
        doc.cell(w, 5, doc.safe(seller_id), new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)

    doc.font(16, bold=True)
    doc.cell(w, 9, "Invoice", new_x="LMARGIN", new_y="NEXT")
    doc.font(10)
    facts = [
        ("Invoice number", inv.number),
        ("Invoice ID", inv.id),
        ("Date of issue", _date(inv.created_at, locale)),
        (
            "Billing period",
            f"{_date(inv.period_start, locale)} - {_date(inv.period_end, locale)}"
            if inv.period_end
            else _date(inv.period_start, locale),
        ),
    ]
    if inv.status == "paid" and inv.paid_at:
        facts.append(("Paid on", _date(inv.paid_at, locale)))
    elif inv.status == "open":
        facts.append(("Due", _date(inv.next_payment_attempt or inv.created_at, locale)))
    for label, value in facts:
        doc.cell(40, 6, label)
        doc.cell(w - 40, 6, doc.safe(str(value)), new_x="LMARGIN", new_y="NEXT")
    doc.ln(4)

    doc.font(10, bold=True)
    doc.cell(w, 6, "Bill to", new_x="LMARGIN", new_y="NEXT")
    doc.font(10)
    for party in (inv.customer_name, inv.customer_email, inv.customer_id):
        if party:
            doc.cell(w, 5, doc.safe(party), new_x="LMARGIN", new_y="NEXT")
    doc.ln(6)

    # Lines
    cols = (w * 0.55, w * 0.1, w * 0.175, w * 0.175)
    doc.set_fill_color(241, 245, 249)
    doc.font(10, bold=True)
    for text, width, align in zip(
        ("Description", "Qty", "Unit price", "Amount"), cols, ("L", "R", "R", "R"), strict=True
    ):
        doc.cell(width, 8, text, align=align, fill=True)
    doc.ln(8)
    doc.font(10)
    for line in inv.lines:
        doc.cell(cols[0], 7, doc.safe(line["description"])[:70])
        doc.cell(cols[1], 7, str(line.get("quantity", 1)), align="R")
        doc.cell(cols[2], 7, amount(line.get("unit_amount", line["amount"])), align="R")
        doc.cell(cols[3], 7, amount(line["amount"]), align="R", new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)

    # Totals
    label_w, value_w = w * 0.8, w * 0.2
    discount = inv.discount or {}
    rows = [("Subtotal", amount(inv.subtotal), False)]
    if inv.discount_amount:
        label = "Discount"
        if discount.get("code"):
            off = (
                f"{discount['percent_off']:g}% off"
                if discount.get("percent_off") is not None
                else ""
            )
            label = f"Discount ({discount['code']}{', ' + off if off else ''})"
        rows.append((label, "-" + amount(inv.discount_amount), False))
    rows.append(("Tax", amount(inv.tax), False))
    rows.append(("Total", amount(inv.total), True))
    rows.append(("Amount paid", amount(inv.amount_paid), False))
    rows.append(
        (
            "Amount due",
            amount(max(0, inv.amount_due - inv.amount_paid) if inv.status == "open" else 0),
            True,
        )
    )
    for label, value, bold in rows:
        doc.font(10, bold=bold)
        doc.cell(label_w, 7, doc.safe(label), align="R")
        doc.cell(value_w, 7, value, align="R", new_x="LMARGIN", new_y="NEXT")

    doc.ln(10)
    doc.font(8)
    doc.set_text_color(100, 116, 139)
    doc.multi_cell(
        w,
        4,
        doc.safe(
            f"Invoice {inv.number} issued by {seller}. Amounts in {inv.currency.upper()}. "
            "Tax: none charged."
        ),
    )
    return bytes(doc.output())
