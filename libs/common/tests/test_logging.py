"""JSON log lines: fixed keys, context ids, and no secret or card number ever printed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from bos_common.context import request_id_var
from bos_common.logging import (
    REDACTED,
    configure_logging,
    get_logger,
    redact_text,
    redact_value,
)

API_KEY = "sk_test_abcDEF1234567890xyz"
LIVE_KEY = "sk_live_51HxYzSecretValue"
WEBHOOK_SECRET = "whsec_9f8e7d6c5b4a"
SESSION = "bos_session_eyJvcmciOiJvcmdfMSJ9.c2lnbmF0dXJl"
RESTRICTED = "rk_live_restricted123"
CARD = "4242424242424242"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_structlog_line_has_the_fixed_keys(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("catalog", level="DEBUG")
    get_logger("bos.test").info("price created", price_id="price_1")
    [line] = lines(capsys)
    assert line["event"] == "price created"
    assert line["level"] == "info"
    assert line["service"] == "catalog"
    assert line["logger"] == "bos.test"
    assert line["price_id"] == "price_1"
    assert line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    assert "request_id" not in line and "trace_id" not in line


def test_secrets_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("checkout")
    get_logger("bos.test").info(
        f"charging with {API_KEY} for card {CARD} session {SESSION}",
        authorization=f"Bearer {LIVE_KEY}",
        api_key=API_KEY,
        card={"number": CARD, "cvc": "123", "exp_month": 12},
        client_secret="pi_123_secret_456",
        headers={"Stripe-Signature": "t=1,v1=abc", "Cookie": "sid=1", "accept": "*/*"},
        note=f"webhook {WEBHOOK_SECRET}, restricted {RESTRICTED}, printed 4242 4242 4242 4242",
        attempt_number=3,
        card_brand="visa",
    )
    out = capsys.readouterr().out
    for secret in (API_KEY, LIVE_KEY, CARD, SESSION, WEBHOOK_SECRET, RESTRICTED, "pi_123_secret"):
        assert secret not in out
    assert "4242 4242 4242 4242" not in out
    assert "t=1,v1=abc" not in out and "sid=1" not in out
    [line] = [json.loads(raw) for raw in out.splitlines()]
    assert line["authorization"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["card"] == REDACTED
    assert line["headers"] == {
        "Stripe-Signature": REDACTED,
        "Cookie": REDACTED,
        "accept": "*/*",
    }
    assert "****4242" in line["event"]
    assert "sk_test_***" in line["event"]
    assert "bos_session_***" in line["event"]
    # Harmless look-alike keys are kept.
    assert line["attempt_number"] == 3
    assert line["card_brand"] == "visa"


def test_stdlib_loggers_use_the_same_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("gateway")
    # A warning: uvicorn's own config (a server started earlier in this process, with
    # --log-level warning as services.sh runs it) leaves uvicorn.error at WARNING.
    logging.getLogger("uvicorn.error").warning(
        "Authorization: Bearer %s", LIVE_KEY, extra={"color_message": "x", "token": SESSION}
    )
    logging.getLogger("sqlalchemy.engine").warning(
        "params %s", {"password": "hunter2", "card_number": CARD}
    )
    out = capsys.readouterr().out
    for secret in (LIVE_KEY, SESSION, "hunter2", CARD):
        assert secret not in out
    first, second = (json.loads(raw) for raw in out.splitlines())
    assert first["service"] == "gateway" and first["logger"] == "uvicorn.error"
    assert first["token"] == REDACTED
    assert "color_message" not in first
    assert second["level"] == "warning"
    assert "****4242" in second["event"]


def test_exception_text_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("subscriptions")
    try:
        raise ValueError(f"stripe rejected {LIVE_KEY}")
    except ValueError:
        get_logger("bos.test").exception("renewal failed")
    [line] = lines(capsys)
    assert line["level"] == "error"
    assert "Traceback" in line["exception"] and "ValueError" in line["exception"]
    assert LIVE_KEY not in line["exception"]


def test_request_and_trace_ids_are_added(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("tokens")
    tracer = TracerProvider().get_tracer("test")  # local provider: no global side effect
    token = request_id_var.set("req_0123456789abcdef01234567")
    try:
        with tracer.start_as_current_span("op") as span:
            get_logger("bos.test").info("inside")
            ctx = span.get_span_context()
    finally:
        request_id_var.reset(token)
    [line] = lines(capsys)
    assert line["request_id"] == "req_0123456789abcdef01234567"
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")


def test_level_and_reconfigure(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("first", level="WARNING")
    configure_logging("second", level="WARNING")  # replaces, does not add, a handler
    log = get_logger("bos.test")
    log.info("hidden")
    log.warning("shown")
    [line] = lines(capsys)
    assert line["event"] == "shown"
    assert line["service"] == "second"


def test_console_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("dev", json=False)
    get_logger("bos.test").info("hello", api_key=API_KEY)
    out = capsys.readouterr().out
    assert "hello" in out and API_KEY not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"key {API_KEY}.", "key sk_test_***"),
        (f"pan {CARD} end", "pan ****4242 end"),
        ("pan 4242-4242-4242-4242", "pan ****4242"),
        ("amex 3782 822463 10005", "amex ****0005"),
        ("pm_4000000000000002", "pm_****0002"),
        ("postgresql://bos:s3cret@db:5432/bos", "postgresql://bos:***@db:5432/bos"),
        ("Authorization: Bearer bos-dev-admin", "Authorization: Bearer ***"),
        # Not card-like: ids, uuids, short numbers, 20+ digit runs stay readable.
        ("evt 550e8400-e29b-41d4-a716-446655440000", None),
        ("amount 5000 order 123456789012", None),
        ("ns 123456789012345678901", None),
        ("req_c846211188052189d29c1352 and 9f1234567890123456789abc", None),
    ],
)
def test_redact_text(text: str, expected: str | None) -> None:
    result = redact_text(text)
    if expected is None:
        assert result == text
    else:
        assert expected in result
        assert result.count("***") >= 1


def test_redact_value_nested() -> None:
    value = {"outer": [{"password": "x", "memo": f"see {CARD}"}], "secret_key": 1}
    assert redact_value(value) == {
        "outer": [{"password": REDACTED, "memo": "see ****4242"}],
        "secret_key": REDACTED,
    }


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("{'password': 'hunter2', 'x': 1}", "hunter2"),
        ("password=hunter2&user=bob", "hunter2"),
        ('{"client_secret": "pi_1_secret_2"}', "pi_1_secret_2"),
        ("confirm pi_3MtwBw_secret_YrKJUKribcBjcG8HVhfZluoGH", "YrKJUKribc"),
        ("Stripe-Signature: t=123,v1=deadbeef", "deadbeef"),
        ("session_token=abc.def", "abc.def"),
    ],
)
def test_redact_key_value_pairs_in_text(text: str, leak: str) -> None:
    assert leak not in redact_text(text)
