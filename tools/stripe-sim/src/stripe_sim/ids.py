"""Stripe-looking identifiers (``pi_3P5ktxEzVBJFlm8c13Qzn9bX``) and client secrets."""

from __future__ import annotations

import hashlib
import os
import string
import time

_ALPHABET = string.ascii_letters + string.digits
#: byte -> alphabet character (b % 62), so random ids are one urandom + one translate
_TABLE = bytes((_ALPHABET[b % len(_ALPHABET)]).encode()[0] for b in range(256))


def _random(k: int) -> str:
    return os.urandom(k).translate(_TABLE).decode("ascii")


def new_id(prefix: str, length: int = 24) -> str:
    return f"{prefix}_{_random(length)}"


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{_random(25)}"


def fingerprint(card_number: str) -> str:
    """Stable per card number, 16 characters like Stripe's."""
    digest = hashlib.sha256(b"stripe-sim-fingerprint:" + card_number.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:16])


def now() -> int:
    return int(time.time())
