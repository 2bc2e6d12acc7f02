from __future__ import annotations

import base64
import json

import pytest

from bos_common.auth import Identity, sign_identity, verify_identity

SECRET = "s" * 32
IDENTITY = Identity(principal_type="api_key", principal_id="key_1", org_id="org_1")


def test_signed_identity_verifies() -> None:
    header = sign_identity(IDENTITY, SECRET, now=1000)
    verified = verify_identity(header, SECRET, now=1010)
    assert verified is not None
    assert verified.model_copy(update={"iat": 0}) == IDENTITY


def test_wrong_secret_is_rejected() -> None:
    assert verify_identity(sign_identity(IDENTITY, SECRET), "t" * 32) is None


def test_stale_identity_is_rejected() -> None:
    header = sign_identity(IDENTITY, SECRET, now=1000)
    assert verify_identity(header, SECRET, now=1000 + 301) is None


def test_forged_payload_is_rejected() -> None:
    header = sign_identity(IDENTITY, SECRET)
    payload, mac = header.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org_id"] = "org_victim"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert verify_identity(f"{forged}.{mac}", SECRET) is None


@pytest.mark.parametrize("value", ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???"])
def test_malformed_headers_are_rejected(value: str) -> None:
    assert verify_identity(value, SECRET) is None


def test_principal_key_separates_orgs_and_principals() -> None:
    other_org = IDENTITY.model_copy(update={"org_id": "org_2"})
    other_key = IDENTITY.model_copy(update={"principal_id": "key_2"})
    keys = {IDENTITY.principal_key, other_org.principal_key, other_key.principal_key}
    assert len(keys) == 3


def test_a_remembered_header_still_ages_out_and_stays_bound_to_its_secret() -> None:
    header = sign_identity(IDENTITY, SECRET, now=5000)
    assert verify_identity(header, SECRET, now=5001) is not None  # verified, remembered
    assert verify_identity(header, SECRET, now=5000 + 301) is None  # stale all the same
    assert verify_identity(header, "t" * 32, now=5001) is None  # another secret: re-checked
