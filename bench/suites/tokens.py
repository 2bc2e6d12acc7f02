"""Issue #4's benchmarks: gateway authentication and minting session tokens.

`tokens_auth`: what authenticating costs at the gateway. The issue compares "an
authenticated request through the gateway" with "unauthenticated /healthz"; the gateway
answers its own /healthz without a hop and without authenticating, so a difference to it
would be mostly the proxy hop (measured apart, scenario `gateway_healthz`). The checks
therefore compare the same proxied no-DB request (checkout's 404 for a path no service
defines: no database, no identity checked upstream) sent anonymously, with a session token
and with an API key: the difference is the gateway's authentication (plus signing a
slightly longer identity header). The gateway's /healthz is measured beside them as the
reference the issue names.

`tokens_mint`: `POST /v1/session-tokens` through the gateway with an API key (warm cache)
at 50 connections and at one connection, against absolute targets (>= 1,000 req/s, p99 <
8 ms) and, as ratios, against the floor's one-INSERT endpoint measured in the same run.
"""

from __future__ import annotations

import dataclasses
import json

import httpx

from bench.fixtures import BenchOrg, create_org, gateway_client
from bench.scenarios import (
    PROXIED_NO_DB_PATH,
    AddedLatency,
    MaxLatency,
    MinRps,
    RpsRatio,
    Scenario,
    Target,
    register,
)

# --- tokens_auth -----------------------------------------------------------------------


def _proxied(name: str, label: str, note: str) -> Target:
    return Target(
        name=name,
        label=label,
        base="gateway",
        path=PROXIED_NO_DB_PATH,
        expected=frozenset({404}),
        procs=("gateway", "checkout"),
        note=note,
    )


AUTH = Scenario(
    name="tokens_auth",
    description=(
        "Gateway authentication: the same proxied no-DB request anonymous, with a session "
        "token (verified locally) and with an API key (warm cache); the gateway's /healthz "
        "beside them."
    ),
    targets=(
        Target(
            name="gateway_healthz",
            label="gateway GET /healthz (unauthenticated, no hop)",
            base="gateway",
            path="/healthz",
            procs=("gateway",),
        ),
        _proxied(
            "anonymous",
            "gateway GET <unrouted checkout path>, no credential (404, one hop)",
            "404 is checkout's answer for a path no service defines (no DB work)",
        ),
        _proxied(
            "session",
            "gateway GET <unrouted checkout path>, Bearer bos_session_... (404)",
            "prepare adds a session token of the bench organization",
        ),
        _proxied(
            "api_key",
            "gateway GET <unrouted checkout path>, Bearer sk_test_... (404, cache warm)",
            "prepare adds the bench organization's API key",
        ),
    ),
    floors=("ping",),
    checks=(
        AddedLatency("session_added_p50", "session", "anonymous", "50", 0.2),
        AddedLatency("api_key_added_p50", "api_key", "anonymous", "50", 0.2),
        RpsRatio("session_rps_ratio", "session", "anonymous", 0.8),
        RpsRatio("api_key_rps_ratio", "api_key", "anonymous", 0.8),
    ),
    notes=(
        "Checks compare each authenticated request with the same request sent anonymously "
        "(the issue's 'vs unauthenticated /healthz', minus the proxy hop that /healthz "
        "does not make); gateway_healthz is reported for reference.",
    ),
)


def mint_session_token(urls: dict[str, str], org: BenchOrg, user: str = "bench-user") -> str:
    with gateway_client(urls) as client:
        r = client.post(
            "/v1/session-tokens",
            json={"external_user_id": user, "expires_in": 86_400},
            headers=org.auth,
        )
        r.raise_for_status()
        token: str = r.json()["token"]
    return token


def _warm(urls: dict[str, str], headers: dict[str, str]) -> None:
    """One request so the gateway has resolved (and cached) the credential."""
    with httpx.Client(base_url=urls["gateway"], timeout=30) as client:
        client.get(PROXIED_NO_DB_PATH, headers=headers)


def _with_auth(scenario: Scenario, auth: dict[str, dict[str, str]]) -> Scenario:
    return dataclasses.replace(
        scenario,
        targets=tuple(
            dataclasses.replace(t, headers={**t.headers, **auth[t.name]}) if t.name in auth else t
            for t in scenario.targets
        ),
    )


def prepare_auth(urls: dict[str, str]) -> Scenario:
    org = create_org(urls, name="bench-auth")
    token = mint_session_token(urls, org)
    auth = {"session": {"Authorization": f"Bearer {token}"}, "api_key": org.auth}
    for headers in auth.values():
        _warm(urls, headers)
    return _with_auth(AUTH, auth)


register(dataclasses.replace(AUTH, prepare=prepare_auth))

# --- tokens_mint -----------------------------------------------------------------------

MINT_BODY = json.dumps({"external_user_id": "bench-user"}).encode()

MINT = Scenario(
    name="tokens_mint",
    description=(
        "POST /v1/session-tokens through the gateway (API key, warm cache): one token "
        "signed and stored per request, beside the floor's one-INSERT endpoint."
    ),
    targets=(
        Target(
            name="mint",
            label="gateway POST /v1/session-tokens -> tokens (HMAC + one INSERT)",
            base="gateway",
            path="/v1/session-tokens",
            method="POST",
            body=MINT_BODY,
            headers={"Content-Type": "application/json"},
            expected=frozenset({201}),
            procs=("gateway", "tokens"),
            note="filled in by prepare: the bench organization's API key",
        ),
    ),
    floors=("ping", "items"),
    checks=(
        MinRps("mint_rps", "mint", 1000),
        MaxLatency("mint_p99", "mint", "99", 8.0),
        # 1,000 req/s is ~15% of the floor's 6,737 (bench/README.md, the `floor` scenario):
        # the same target as a ratio, which holds up better on a busy machine.
        RpsRatio("mint_vs_floor_insert", "mint", "floor_items", 0.15),
    ),
    notes=(
        "Every request mints a new token for the same external user (allowed: plan 1.7); "
        "the API key is resolved once before measuring, so its cache is warm.",
    ),
)


def prepare_mint(urls: dict[str, str]) -> Scenario:
    org = create_org(urls, name="bench-mint")
    mint_session_token(urls, org)  # warms the gateway's API-key cache
    return _with_auth(MINT, {"mint": org.auth})


register(dataclasses.replace(MINT, prepare=prepare_mint))
