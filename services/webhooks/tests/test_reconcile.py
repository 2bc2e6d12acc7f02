"""Reconciliation per connected account (issue 14.5, Stripe rule 5) against real Postgres
and the Stripe simulator: events that happen on a BOS organization's connected account
are listed with `Stripe-Account` (the tokens service names the accounts; a fake here),
recorded once through the inbox, and never mixed with other accounts'."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import select

from bos_common.testing import Infra, migrate, serve_app
from stripe_sim.testing import run_simulator
from webhooks import service
from webhooks.app import build_runtime
from webhooks.models import outbox, stripe_events
from webhooks.runtime import WebhooksRuntime
from webhooks.settings import WebhooksSettings
from webhooks.testing import sim_emit, succeeded_intent
from webhooks.worker import reconcile_once

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    runtime: WebhooksRuntime
    sim: httpx.AsyncClient
    # What the fake tokens service answers: connected account -> organization.
    accounts: dict[str, str]


def fake_tokens(accounts: dict[str, str]) -> FastAPI:
    """The two internal routes of the tokens service the webhooks service calls."""
    app = FastAPI()

    @app.get("/internal/stripe-accounts")
    async def every_account() -> dict[str, Any]:
        return {"data": [{"stripe_account_id": a, "org_id": o} for a, o in accounts.items()]}

    @app.get("/internal/stripe-accounts/{account}")
    async def one_account(account: str) -> dict[str, str]:
        if account not in accounts:
            raise HTTPException(404)
        return {"stripe_account_id": account, "org_id": accounts[account]}

    return app


@pytest.fixture(scope="module")
def sim_base() -> Iterator[str]:
    with run_simulator() as base:  # no webhook endpoint: nothing is delivered
        yield base


@pytest.fixture(scope="module")
async def stack(infra: Infra, sim_base: str) -> AsyncIterator[Stack]:
    await migrate(infra.database_url, "webhooks")
    accounts: dict[str, str] = {}
    async with (
        serve_app(fake_tokens(accounts)) as tokens_url,
        httpx.AsyncClient(base_url=sim_base, timeout=10) as sim,
    ):
        settings = WebhooksSettings(
            **infra.env(),
            STRIPE_WEBHOOK_SECRETS="whsec_reconcile_account",
            STRIPE_CONNECT_WEBHOOK_SECRETS="whsec_reconcile_connect",
            STRIPE_SECRET_KEY="sk_test_reconcile",
            STRIPE_API_BASE=sim_base,
            TOKENS_URL=tokens_url,
            RECONCILE_INTERVAL_SECONDS="3600",
        )
        runtime = build_runtime(settings)
        yield Stack(runtime, sim, accounts)
        await runtime.accounts.close()
        await runtime.db.dispose()


async def connected_account(stack: Stack) -> str:
    account = await stack.runtime.stripe.v1.accounts.create_async({"type": "express"})
    return str(account.id)


async def emit(
    stack: Stack, type_: str, obj: dict[str, Any], account: str | None = None
) -> dict[str, Any]:
    return await sim_emit(stack.sim, type_, obj, account)


def account_updated(account: str) -> dict[str, Any]:
    return {"id": account, "object": "account", "charges_enabled": True, "payouts_enabled": True}


def payment_succeeded() -> dict[str, Any]:
    return succeeded_intent("org_rec")


async def stored(runtime: WebhooksRuntime, event_id: str) -> list[Any]:
    """(account, outbox event types) of a stored Stripe event; [] when not stored."""
    async with runtime.db.transaction() as s:
        rows = (await s.execute(select(stripe_events).where(stripe_events.c.id == event_id))).all()
        types = (
            await s.execute(
                select(outbox.c.event_type).where(
                    outbox.c.envelope["data"]["stripe_event_id"].astext == event_id
                )
            )
        ).scalars()
        return [(row.account, sorted(types)) for row in rows]


async def test_rule_5_each_connected_accounts_events_are_listed_and_recorded_once(
    stack: Stack,
) -> None:
    ours, other = await connected_account(stack), await connected_account(stack)
    stack.accounts.update({ours: "org_rec", other: "org_rec_2"})
    missed = await emit(stack, "account.updated", account_updated(ours), ours)
    missed_other = await emit(stack, "account.updated", account_updated(other), other)
    delivered = await emit(stack, "account.updated", account_updated(ours), ours)
    # What the Connect endpoint does not subscribe to is not listed either.
    not_ours_type = await emit(stack, "payment_intent.succeeded", payment_succeeded(), ours)
    # A connected account that is no BOS organization's is never listed.
    stranger = await connected_account(stack)
    foreign = await emit(stack, "account.updated", account_updated(stranger), stranger)
    # One of them came through the Connect endpoint already: the inbox has it.
    async with stack.runtime.db.transaction() as session:
        assert await service.ingest(stack.runtime, session, delivered)

    recorded = await reconcile_once(stack.runtime)

    assert recorded == 2
    assert await stored(stack.runtime, missed["id"]) == [(ours, ["account.updated.v1"])]
    assert await stored(stack.runtime, missed_other["id"]) == [(other, ["account.updated.v1"])]
    assert len(await stored(stack.runtime, delivered["id"])) == 1
    assert await stored(stack.runtime, not_ours_type["id"]) == []
    assert await stored(stack.runtime, foreign["id"]) == []
    assert await reconcile_once(stack.runtime) == 0, "a second pass finds nothing new"


async def test_the_platform_pass_lists_only_the_platforms_own_events(stack: Stack) -> None:
    account = await connected_account(stack)
    stack.accounts[account] = "org_rec_3"
    platform = await emit(stack, "payment_intent.succeeded", payment_succeeded())
    connected = await emit(stack, "account.updated", account_updated(account), account)

    assert await reconcile_once(stack.runtime) == 2

    assert await stored(stack.runtime, platform["id"]) == [(None, ["payment.succeeded.v1"])]
    assert await stored(stack.runtime, connected["id"]) == [(account, ["account.updated.v1"])]


async def test_an_account_that_cannot_be_listed_spares_the_others(stack: Stack) -> None:
    account = await connected_account(stack)
    # Known to tokens, unknown to Stripe (disconnected): its listing fails.
    stack.accounts.update({"acct_gone0000000000": "org_gone", account: "org_rec_4"})
    missed = await emit(stack, "account.updated", account_updated(account), account)
    try:
        assert await reconcile_once(stack.runtime) == 1
    finally:
        del stack.accounts["acct_gone0000000000"]
    assert await stored(stack.runtime, missed["id"]) == [(account, ["account.updated.v1"])]


async def test_tokens_down_still_reconciles_the_platforms_events(
    infra: Infra, sim_base: str
) -> None:
    settings = WebhooksSettings(
        **infra.env(),
        STRIPE_WEBHOOK_SECRETS="whsec_reconcile_account",
        STRIPE_SECRET_KEY="sk_test_reconcile",
        STRIPE_API_BASE=sim_base,
        TOKENS_URL="http://127.0.0.1:9",  # nothing listens
        RECONCILE_INTERVAL_SECONDS="3600",
    )
    runtime = build_runtime(settings)
    try:
        async with httpx.AsyncClient(base_url=sim_base, timeout=10) as sim:
            r = await sim.post(
                "/_sim/events",
                json={"type": "payment_intent.succeeded", "data": {"object": payment_succeeded()}},
            )
        event = r.json()
        assert await reconcile_once(runtime) >= 1
        assert await stored(runtime, event["id"]) == [(None, ["payment.succeeded.v1"])]
    finally:
        await runtime.accounts.close()
        await runtime.db.dispose()
