"""Invoice PDF rendering (no servers)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pypdf
import pytest

from subscriptions.pdf import money, render_invoice_pdf
from subscriptions.testing import invoice_row


def invoice(**kw):
    base = {
        "number": "ACME-000042",
        "customer_email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "currency": "eur",
        "subtotal": 10000,
        "discount_amount": 2000,
        "discount": {"code": "SAVE20", "percent_off": 20.0, "amount": 2000},
        "total": 8000,
        "amount_due": 8000,
        "lines": [
            {
                "description": "Pro (Jan 31, 2026 - Feb 28, 2026)",
                "quantity": 1,
                "unit_amount": 10000,
                "amount": 10000,
            }
        ],
    }
    return invoice_row(**{**base, **kw})


def text_of(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_money_per_locale_and_minor_units():
    assert money(123456, "usd", "en_US") == "$1,234.56"
    assert money(123456, "eur", "de_DE") == "1.234,56\xa0€"
    assert money(300, "jpy", "en_US") == "¥300", "JPY has no minor unit"


def test_17_5_pdf_carries_the_invoice_numbers():
    text = text_of(render_invoice_pdf(invoice(), seller="Acme GmbH", locale="de_DE"))
    for expected in (
        "Acme GmbH",
        "ACME-000042",
        "Ada Lovelace",
        "ada@example.com",
        "SAVE20",
        "100,00",
        "20,00",
        "80,00",
        "Tax",
        "DUE",
        "31.01.2026",
    ):
        assert expected in text, expected


def test_pdf_without_a_unicode_font_falls_back_to_iso_codes(monkeypatch):
    import subscriptions.pdf as pdf

    monkeypatch.setattr(pdf, "FONT_CANDIDATES", ())
    pdf._unicode_font.cache_clear()
    try:
        text = text_of(
            render_invoice_pdf(
                invoice(currency="inr", status="paid", paid_at=datetime(2026, 2, 1, tzinfo=UTC)),
                seller="Acme",
                locale="en_IN",
            )
        )
    finally:
        pdf._unicode_font.cache_clear()
    assert "INR" in text and "PAID" in text


def embeds_a_font(pdf: bytes) -> bool:
    return b"/FontFile2" in pdf


def test_an_invoice_in_windows_1252_embeds_no_font():
    pdf = render_invoice_pdf(invoice(currency="eur"), seller="Café Müller", locale="de_DE")
    assert not embeds_a_font(pdf)
    text = text_of(pdf)
    assert "Café Müller" in text and "80,00\xa0€" in text


def test_text_outside_windows_1252_is_shown_in_the_unicode_font():
    import subscriptions.pdf as pdf_module

    if pdf_module._unicode_font(None) is None:
        pytest.skip("no Unicode font on this machine (the ISO-code fallback test covers it)")
    pdf = render_invoice_pdf(invoice(currency="inr"), seller="Дом", locale="en_IN")
    assert embeds_a_font(pdf)
    text = text_of(pdf)
    assert "Дом" in text and "₹" in text
