"""The session-token format (bos_common.session_tokens), as the gateway verifies it:
plan 1.1 (format), 1.4 (expiry), 14.5 (tampering) and key rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bos_common.session_tokens import (
    PREFIX,
    SessionKeys,
    TokenExpired,
    TokenInvalid,
    b64url,
)

SECRETS = "k1:first-secret-0123456789,k2:second-secret-0123456789"
KEYS = SessionKeys.parse(SECRETS)
NOW = 1_800_000_000


def mint(**kw: object) -> str:
    args: dict[str, object] = {
        "org": "org_1",
        "sub": "user_1",
        "scope": "session",
        "expires_in": 3600,
        "now": NOW,
    }
    args.update(kw)
    token, _ = KEYS.mint(**args)  # type: ignore[arg-type]
    return token


def split(token: str) -> tuple[str, str]:
    payload, _, signature = token[len(PREFIX) :].partition(".")
    return payload, signature


def decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


VALID = mint()


# --- 1.1 format ---------------------------------------------------------------------------


def test_1_1_token_is_prefix_base64url_json_claims_dot_hmac_sha256() -> None:
    assert VALID.startswith("bos_session_")
    payload, signature = split(VALID)
    claims = json.loads(decode(payload))
    assert set(claims) == {"iss", "sub", "org", "jti", "iat", "exp", "scope", "kid"}
    assert claims["sub"] == "user_1" and claims["org"] == "org_1"
    assert claims["jti"].startswith("sess_") and claims["scope"] == "session"
    assert claims["exp"] - claims["iat"] == 3600  # default expiry is the caller's 3600
    assert claims["kid"] == "k1"
    # The signature validates with the secret, computed independently of the library.
    expected = hmac.new(b"first-secret-0123456789", payload.encode(), hashlib.sha256).digest()
    assert decode(signature) == expected
    assert "=" not in VALID  # unpadded base64url


def test_verified_claims_round_trip() -> None:
    claims = KEYS.verify(VALID, now=NOW + 10)
    assert (claims.org, claims.sub, claims.scope, claims.kid) == (
        "org_1",
        "user_1",
        "session",
        "k1",
    )
    assert claims.exp == NOW + 3600


def test_portal_token_is_bound_to_its_customer() -> None:
    token = mint(scope="portal", sub="cus_1", cus="cus_1")
    claims = KEYS.verify(token, now=NOW)
    assert claims.scope == "portal" and claims.cus == "cus_1" and claims.jti.startswith("ps_")


def test_a_portal_token_needs_a_customer() -> None:
    with pytest.raises(ValueError):
        mint(scope="portal", sub="cus_1")


# --- 1.4 expiry ---------------------------------------------------------------------------


def test_1_4_token_expired_a_minute_ago_is_expired_not_invalid() -> None:
    with pytest.raises(TokenExpired) as caught:
        KEYS.verify(VALID, now=NOW + 3600 + 60)
    assert caught.value.claims.sub == "user_1"


def test_token_is_valid_until_the_second_it_expires() -> None:
    KEYS.verify(VALID, now=NOW + 3599)
    with pytest.raises(TokenExpired):
        KEYS.verify(VALID, now=NOW + 3600)


def test_a_token_issued_in_the_future_is_refused() -> None:
    with pytest.raises(TokenInvalid):
        KEYS.verify(mint(now=NOW + 3600), now=NOW)


def test_verify_uses_the_clock_by_default() -> None:
    fresh, _ = KEYS.mint(org="org_1", sub="u", scope="session", expires_in=60)
    assert KEYS.verify(fresh).sub == "u"
    with pytest.raises(TokenExpired):
        KEYS.verify(fresh, now=time.time() + 61)


# --- 14.5 tampering -----------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_14_5_flipping_any_character_of_payload_or_signature_fails(part: str) -> None:
    payload, signature = split(VALID)
    target = payload if part == "payload" else signature
    for i, original in enumerate(target):
        for replacement in (ALPHABET[(ALPHABET.index(original) + 1) % 64], "A", "_", "."):
            if replacement == original:
                continue
            changed = target[:i] + replacement + target[i + 1 :]
            token = (
                f"{PREFIX}{changed}.{signature}"
                if part == "payload"
                else f"{PREFIX}{payload}.{changed}"
            )
            with pytest.raises(TokenInvalid):
                KEYS.verify(token, now=NOW)


def test_14_5_flipping_any_bit_of_the_decoded_payload_fails() -> None:
    payload, signature = split(VALID)
    raw = bytearray(decode(payload))
    for i in range(len(raw)):
        for bit in range(8):
            mutated = bytearray(raw)
            mutated[i] ^= 1 << bit
            with pytest.raises(TokenInvalid):
                KEYS.verify(f"{PREFIX}{b64url(bytes(mutated))}.{signature}", now=NOW)


def test_14_5_modified_payload_with_the_original_signature_fails() -> None:
    payload, signature = split(VALID)
    claims = json.loads(decode(payload))
    for change in (
        {"sub": "someone_else"},
        {"org": "org_2"},
        {"exp": NOW + 86_400 * 365},
        {"scope": "portal", "cus": "cus_1"},
    ):
        forged = b64url(json.dumps({**claims, **change}).encode())
        with pytest.raises(TokenInvalid):
            KEYS.verify(f"{PREFIX}{forged}.{signature}", now=NOW)


def test_14_5_swapping_payloads_between_two_tokens_fails() -> None:
    other = mint(sub="user_2")
    p1, s1 = split(VALID)
    p2, s2 = split(other)
    for token in (f"{PREFIX}{p1}.{s2}", f"{PREFIX}{p2}.{s1}"):
        with pytest.raises(TokenInvalid):
            KEYS.verify(token, now=NOW)


def test_14_5_alg_none_and_empty_or_missing_signature_fail() -> None:
    payload, _ = split(VALID)
    claims = json.loads(decode(payload))
    none_payload = b64url(json.dumps({**claims, "alg": "none"}).encode())
    for token in (
        f"{PREFIX}{none_payload}.",
        f"{PREFIX}{none_payload}",
        f"{PREFIX}{payload}.",
        f"{PREFIX}{payload}",
        PREFIX,
    ):
        with pytest.raises(TokenInvalid):
            KEYS.verify(token, now=NOW)


def test_14_5_alg_other_than_hs256_fails_even_when_correctly_signed() -> None:
    claims = KEYS.verify(VALID, now=NOW).to_json()
    for alg in ("none", "RS256", "HS512", ""):
        with pytest.raises(TokenInvalid):
            KEYS.verify(KEYS.sign({**claims, "alg": alg}), now=NOW)
    assert KEYS.verify(KEYS.sign({**claims, "alg": "HS256"}), now=NOW).sub == "user_1"


def test_14_5_kid_games_fail() -> None:
    claims = KEYS.verify(VALID, now=NOW).to_json()
    # kid names the other key but k1 signed; kid unknown; kid missing; kid not a string.
    for kid in ("k2", "k3", None, 1, ["k1"]):
        body = (
            {**claims, "kid": kid}
            if kid is not None
            else {k: v for k, v in claims.items() if k != "kid"}
        )
        with pytest.raises(TokenInvalid):
            KEYS.verify(KEYS.sign(body, kid="k1"), now=NOW)
    # Signed with a secret the server does not have, whatever kid says.
    stranger = SessionKeys.parse("k1:attacker-secret-0123456789")
    with pytest.raises(TokenInvalid):
        KEYS.verify(stranger.sign(claims), now=NOW)


def test_14_5_hand_built_tokens_with_bad_claims_fail() -> None:
    good = KEYS.verify(VALID, now=NOW).to_json()
    bad_claims = [
        {**good, "iss": "someone"},
        {**good, "scope": "admin"},
        {**good, "iat": True},
        {**good, "exp": "tomorrow"},
        {**good, "exp": good["iat"]},
        {**good, "sub": ""},
        {**good, "org": None},
        {**good, "scope": "portal"},  # a portal token without its customer
        {**good, "cus": 42},
    ]
    for claims in bad_claims:
        with pytest.raises(TokenInvalid):
            KEYS.verify(KEYS.sign(claims), now=NOW)
    for raw in (b"[]", b"null", b"not json", b'"string"'):
        payload = b64url(raw)
        mac = b64url(hmac.digest(b"first-secret-0123456789", payload.encode(), "sha256"))
        with pytest.raises(TokenInvalid):
            KEYS.verify(f"{PREFIX}{payload}.{mac}", now=NOW)


def test_14_5_oversized_and_foreign_strings_fail() -> None:
    for token in (
        "",
        "bos_sess",
        "Bearer " + VALID,
        VALID + "." + "A" * 10,
        "x" * 5000,
        PREFIX + "A" * 3000 + ".AAAA",
        VALID.replace("bos_session_", "bos_portal_"),
    ):
        with pytest.raises(TokenInvalid):
            KEYS.verify(token, now=NOW)


# --- rotation -----------------------------------------------------------------------------


def test_rotation_two_active_secrets_first_signs_all_verify() -> None:
    old = SessionKeys.parse("k2:second-secret-0123456789")
    token_by_old_key = old.sign({**KEYS.verify(VALID, now=NOW).to_json(), "kid": "k2"})
    assert KEYS.verify(token_by_old_key, now=NOW).kid == "k2"  # still accepted
    assert KEYS.signing_kid == "k1"
    retired = SessionKeys.parse("k1:first-secret-0123456789")  # k2 dropped
    with pytest.raises(TokenInvalid):
        retired.verify(token_by_old_key, now=NOW)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        " , ",
        "k1",
        "k1:short",
        "k1:aaaaaaaaaaaaaaaaaaaa,k1:bbbbbbbbbbbbbbbbbbbbbb",
        "bad kid:" + "x" * 20,
    ],
)
def test_malformed_secret_settings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        SessionKeys.parse(spec)


def test_a_bare_secret_is_named_by_its_position() -> None:
    assert SessionKeys.parse("dev-session-secret-not-for-production").kids == ("k1",)
    keys = SessionKeys.parse("k9:first-secret-0123456789, second-secret-0123456789")
    assert keys.kids == ("k9", "k2")


# --- property: no mutation of a valid token verifies -----------------------------------


@st.composite
def mutations(draw: st.DrawFn) -> str:
    token = VALID
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "splice", "swap"]))
    i = draw(st.integers(min_value=0, max_value=len(token) - 1))
    char = draw(st.characters(codec="utf-8") | st.sampled_from(list(ALPHABET + ".=")))
    if kind == "replace":
        return token[:i] + char + token[i + 1 :]
    if kind == "insert":
        return token[:i] + char + token[i:]
    if kind == "delete":
        return token[:i] + token[i + 1 :]
    if kind == "truncate":
        return token[:i]
    if kind == "splice":
        extra = draw(st.text(alphabet=ALPHABET + ".", min_size=1, max_size=20))
        j = draw(st.integers(min_value=i, max_value=len(token)))
        return token[:i] + extra + token[j:]
    j = draw(st.integers(min_value=0, max_value=len(token) - 1))
    chars = list(token)
    chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_14_5_property_no_mutation_of_a_valid_token_verifies(mutated: str) -> None:
    if mutated == VALID:
        return  # e.g. swapping two equal characters: not a mutation
    with pytest.raises(TokenInvalid):
        KEYS.verify(mutated, now=NOW)
