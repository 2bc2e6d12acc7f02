"""Structured logging: one JSON object per line on stdout, secrets masked.

structlog loggers and stdlib loggers (uvicorn, sqlalchemy, aio_pika, ...) go through
the same stdlib handler and the same final processors, so every line has the same
keys and passes the same redaction.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Final

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from bos_common.context import request_id_var

__all__ = [
    "REDACTED",
    "configure_logging",
    "get_logger",
    "redact_text",
    "redact_value",
    "redaction_processor",
]

REDACTED: Final = "[REDACTED]"

# A key is secret if its normalised name contains one of these...
_SECRET_KEY_PARTS: Final = (
    "authorization",
    "api_key",
    "apikey",
    "secret",  # also client_secret, webhook_secret
    "password",
    "passwd",
    "token",
    "stripe_signature",
    "cookie",
    "cvc",
    "cvv",
    "private_key",
)
# ...or is exactly one of these. "number" and "card" are matched whole: as substrings
# they would hide harmless fields such as attempt_number or card_brand.
_SECRET_KEYS_EXACT: Final = frozenset({"card", "number", "card_number", "cardnumber", "pan"})

_TOKEN_RE: Final = re.compile(
    r"\b(sk_live_|sk_test_|rk_live_|rk_test_|rk_|whsec_|bos_session_)[A-Za-z0-9_.\-]+"
)
_BEARER_RE: Final = re.compile(r"\b(Bearer)\s+[A-Za-z0-9_.~+/=\-]+", re.IGNORECASE)
_URL_PASSWORD_RE: Final = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
# Stripe PaymentIntent / SetupIntent client secrets: pi_123_secret_456.
_TOKEN_PREFIXES: Final = ("sk_", "rk_", "whsec_", "bos_session_")
_CLIENT_SECRET_RE: Final = re.compile(r"\b((?:pi|seti)_[A-Za-z0-9]+_secret_)[A-Za-z0-9]+")
# A Stripe-Signature value has commas in it ("t=...,v1=...,v0=...").
_STRIPE_SIG_RE: Final = re.compile(
    r"(stripe[_-]signature[\"']?\s*[:=]\s*[\"']?)[^\"'\s;&}]+", re.IGNORECASE
)
# key=value or 'key': 'value' pairs inside text (formatted dicts, query strings, DSNs).
_KV_SECRET_RE: Final = re.compile(
    r"((?:password|passwd|secret|api[_-]?key|token|cvc|cvv|cookie|signature)[\w-]*"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;&}]+",
    re.IGNORECASE,
)
# 13-19 digits in one run, or grouped by spaces/dashes like a printed card. Not next to a
# letter or digit, so hex ids and uuids are left alone while "pm_4242..." is still caught,
# and 20+ digit runs (nanosecond timestamps) are not cards.
_CARD_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])"
    r"(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})"
    r"(?![A-Za-z0-9])"
)


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "****" + digits[-4:]


_KV_WORDS: Final = (
    "password",
    "passwd",
    "secret",
    "key",
    "token",
    "cvc",
    "cvv",
    "cookie",
    "signature",
)
_FOUR_DIGITS: Final = re.compile(r"\d{4}")


def redact_text(text: str) -> str:
    """Masks API keys, webhook secrets, session tokens, bearer credentials, URL passwords,
    secret-named key=value pairs and card numbers (keeping the last 4 digits) in text.

    Each regex runs only when a cheap substring test says it could match: this runs on
    every string of every log line.
    """
    lower = text.lower()
    # Most strings with "_" are BOS or Stripe ids (cs_..., pay_...): only the prefixes
    # these two look for make them run.
    if any(prefix in text for prefix in _TOKEN_PREFIXES):
        text = _TOKEN_RE.sub(r"\1***", text)
    if "_secret_" in text:
        text = _CLIENT_SECRET_RE.sub(r"\1***", text)
    if any(word in lower for word in _KV_WORDS):
        text = _STRIPE_SIG_RE.sub(r"\1***", text)
        text = _KV_SECRET_RE.sub(r"\1***", text)
    if "bearer" in lower:
        text = _BEARER_RE.sub(r"\1 ***", text)
    if "://" in text:
        text = _URL_PASSWORD_RE.sub(r"\1***@", text)
    if _FOUR_DIGITS.search(text):
        text = _CARD_RE.sub(_mask_card, text)
    return text


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    # Cached: log lines reuse a small set of keys, and this ran for every key of every line.
    norm = key.lower().replace("-", "_")
    return norm in _SECRET_KEYS_EXACT or any(part in norm for part in _SECRET_KEY_PARTS)


def redact_value(value: Any) -> Any:
    """Recursively masks secret-named keys and secret-looking strings."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return value


# Written by our own processors from values we generate: skipping them saves time.
# (request_id is not here: a client may choose it.)
_TRUSTED_KEYS: Final = frozenset({"timestamp", "level", "logger", "service", "trace_id", "span_id"})


def redaction_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if key in _TRUSTED_KEYS:
            continue
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | Mapping | list | tuple | set | frozenset):
            event_dict[key] = redact_value(value)
    return event_dict


def _add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    rid = request_id_var.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    return event_dict


def _add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


# Read at log time, not captured in a closure: a later configure_logging() (tests build
# many apps in one process) renames the service for every logger at once.
_service: str = "unknown"


def _add_service(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    event_dict.setdefault("service", _service)
    return event_dict


_LEADING_KEYS: Final = ("timestamp", "level", "service", "event", "request_id", "trace_id")


def _dumps(obj: Any, **_: Any) -> str:
    # Fixed leading keys make raw lines readable; the rest keep their order.
    ordered = {k: obj[k] for k in _LEADING_KEYS if k in obj}
    ordered.update(obj)
    # default=str: a stray object (UUID subclass, Decimal, exception) must never break a line.
    return orjson.dumps(ordered, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class _BOSHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at emit time (pytest capture, reopened stdio).

    Its own class, so a second configure_logging() replaces it instead of adding one.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout  # emit() runs under the handler lock
        super().emit(record)


def _enrichers() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service,
        _add_request_id,
        _add_trace_ids,
    ]


def _drop_record_noise(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # ExtraAdder also picks up `message` (set on the record while formatting; same as
    # `event`) and uvicorn's ANSI-coloured duplicate `color_message`.
    event_dict.pop("message", None)
    event_dict.pop("color_message", None)
    return event_dict


def _formatter(json: bool) -> structlog.stdlib.ProcessorFormatter:
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        # ExtraAdder: stdlib callers pass context as logging's `extra={...}`.
        foreign_pre_chain=[
            *_enrichers(),
            structlog.stdlib.ExtraAdder(),
            _drop_record_noise,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # Last before rendering, so exception text and stdlib messages are covered too.
            redaction_processor,
            renderer,
        ],
    )


def _install_root_handler(level: str, json: bool) -> None:
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _BOSHandler)]:
        root.removeHandler(existing)
    handler = _BOSHandler()
    handler.setFormatter(_formatter(json))
    root.addHandler(handler)
    root.setLevel(level.upper())


def _route_library_loggers() -> None:
    # uvicorn installs its own handlers via dictConfig; send its records to the root
    # handler instead so they come out as the same JSON lines.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aio_pika", "aiormq"):
        lib_logger = logging.getLogger(name)
        lib_logger.handlers.clear()
        lib_logger.propagate = True


def configure_logging(service: str, level: str = "INFO", json: bool = True) -> None:
    """Configures structlog and stdlib logging for this process. Safe to call again."""
    global _service
    _service = service
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_enrichers(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # No caching: a module-level logger used before configure_logging() (at import,
        # in tests) would otherwise keep structlog's default config for good.
        cache_logger_on_first_use=False,
    )
    _install_root_handler(level, json)
    _route_library_loggers()


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
