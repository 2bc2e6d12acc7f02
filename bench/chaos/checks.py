"""After the run: what must hold whatever the faults did, each a Check (name, passed,
detail) for the table; reads BOS's schemas (bench.chaos.sql), the simulator, the SMTP
sink's directory and the broker's dead-letter queues."""

from __future__ import annotations

import email
import email.policy
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.chaos import sql
from bench.chaos.flows import TERMINAL, Outcome
from bench.chaos.revocations import Revocation

REVOCATION_GOAL_SECONDS = 0.1


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    counts: bool = True  # False: reported, not a condition of success


async def sim_list(sim: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """Every object of a Stripe list endpoint (newest first, `starting_after` pages)."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = (await sim.get(path, params=params)).json()
        found += page["data"]
        if not page.get("has_more") or not page["data"]:
            return found
        params["starting_after"] = page["data"][-1]["id"]


async def sim_events(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every event the simulator emitted (its control API: newest last, older pages by
    `ending_before`)."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = (await sim.get("/_sim/events", params=params)).json()
        found = page["data"] + found
        if not page.get("has_more") or not page["data"]:
            return found
        params = {"limit": 1000, "ending_before": page["data"][0]["id"]}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def mails_by_address(mail_dir: Path) -> tuple[dict[str, Counter[str]], int]:
    """By recipient, how many distinct e-mails of each kind (by Message-ID); and how many
    files were the same message again (sent again by a sender killed before recording it)."""
    seen: set[str] = set()
    again = 0
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        message_id = str(message["Message-ID"])
        if message_id in seen:
            again += 1
            continue
        seen.add(message_id)
        found[str(message["To"]).strip().lower()][str(message["X-BOS-Notification"])] += 1
    return found, again


async def run_checks(
    conn: asyncpg.Connection,
    sim: httpx.AsyncClient,
    outcomes: list[Outcome],
    mail_dir: Path,
    dead_letters: dict[str, int],
    revocations: list[Revocation],
    subscribed_types: set[str],
    broker_down: list[tuple[float, float]],
) -> list[Check]:
    checks: list[Check] = []
    ids = [o.checkout_id for o in outcomes if o.checkout_id]
    rows = {r["id"]: r for r in await sql.checkouts(conn, ids)}

    # 1. Every checkout terminal, none processing (in the whole database too).
    statuses = Counter(r["status"] for r in rows.values())
    not_terminal = [i for i, r in rows.items() if r["status"] not in TERMINAL]
    processing = await sql.checkouts_processing(conn)
    never_created = sum(1 for o in outcomes if not o.checkout_id)
    checks.append(
        Check(
            "every checkout terminal",
            not not_terminal and not processing,
            f"{dict(statuses)}; not terminal {len(not_terminal)} {not_terminal[:3]};"
            f" processing {len(processing)}; never created (client gave up) {never_created}",
        )
    )
    unexpected = [
        (o.flow, o.checkout_id, rows.get(o.checkout_id, {}).get("status"), o.error[:80])
        for o in outcomes
        if o.checkout_id and rows.get(o.checkout_id, {}).get("status") != o.expected
    ]
    checks.append(
        Check(
            "every flow ended as its customer wanted",
            not unexpected and not never_created,
            f"{len(unexpected)} other {unexpected[:3]}",
        )
    )

    # 2. No double charge: every succeeded PaymentIntent is one BOS payment's, same amount;
    # a second success for a checkout is refunded.
    intents = await sim_list(sim, "/v1/payment_intents")
    charges = await sim_list(sim, "/v1/charges")
    refunded = {c["payment_intent"] for c in charges if c.get("refunded")}
    payments = {p["stripe_intent_id"]: p for p in await sql.payments_with_intents(conn)}
    succeeded = [pi for pi in intents if pi["status"] == "succeeded"]
    orphans = [
        (pi["id"], pi["metadata"].get("checkout_id"))
        for pi in succeeded
        if pi["id"] not in payments
    ]
    wrong_amount = [
        pi["id"]
        for pi in succeeded
        if pi["id"] in payments and payments[pi["id"]]["amount"] != pi["amount"]
    ]
    kept: Counter[str] = Counter()
    duplicates_refunded = 0
    per_checkout: Counter[str] = Counter()
    for pi in succeeded:
        checkout_id = pi["metadata"].get("checkout_id")
        if not checkout_id:
            continue
        per_checkout[checkout_id] += 1
        if pi["id"] in refunded:
            duplicates_refunded += 1
        else:
            kept[checkout_id] += 1
    doubles = [c for c, n in kept.items() if n > 1]
    fee_wrong = [
        pi["id"]
        for pi in succeeded
        if pi.get("transfer_data") and pi.get("application_fee_amount") != pi["amount"] * 5 // 100
    ]
    checks.append(
        Check(
            "0 double charges",
            not doubles and not orphans and not wrong_amount and not fee_wrong,
            f"succeeded intents {len(succeeded)}; double-charged checkouts {len(doubles)};"
            f" without a BOS payment {len(orphans)} {orphans[:3]}; amount differs"
            f" {len(wrong_amount)}; Connect fee not 5% {len(fee_wrong)};"
            f" second successes refunded {duplicates_refunded}",
        )
    )

    # 3. No lost event: every event of a subscribed type is stored by the webhooks service.
    events = [e for e in await sim_events(sim) if e["type"] in subscribed_types]
    stored = await sql.stored_stripe_events(conn)
    lost = [e["id"] for e in events if e["id"] not in stored]
    checks.append(
        Check(
            "0 lost Stripe events",
            not lost,
            f"{len(events)} emitted of subscribed types, {len(lost)} not stored {lost[:3]}",
        )
    )

    # 4. Every completed checkout: one subscription; a paid one (no trial, not free) one
    # paid first invoice; every e-mail sent once; a portal cancellation confirmed once.
    complete = [i for i, r in rows.items() if r["status"] == "complete"]
    subs = Counter(s["checkout_id"] for s in await sql.subscriptions_of_checkouts(conn, complete))
    first = Counter(
        i["checkout_id"]
        for i in await sql.invoices_of_checkouts(conn, complete)
        if i["billing_reason"] in ("subscription_create", "one_time") and i["status"] == "paid"
    )
    charged = [c for c in complete if not rows[c]["is_free"] and not rows[c]["trial_days"]]
    mails, sent_again = mails_by_address(mail_dir)
    bad_subs = [c for c in complete if subs[c] != 1]
    bad_invoices = [c for c in charged if first[c] != 1]
    extra_invoices = [c for c in complete if c not in charged and first[c] > 1]
    repeated_mail = [
        (to, kind) for to, kinds in mails.items() for kind, n in kinds.items() if n > 1
    ]
    cancel_mails = [
        o.checkout_id
        for o in outcomes
        if o.portal_canceled and mails.get(o.email, Counter())["subscription_canceled"] != 1
    ]
    checks.append(
        Check(
            "completed: 1 subscription, 1 paid invoice, e-mails once",
            not (bad_subs or bad_invoices or extra_invoices or repeated_mail or cancel_mails),
            f"{len(complete)} complete; subscriptions != 1: {len(bad_subs)} {bad_subs[:3]};"
            f" paid first invoices != 1 (of {len(charged)} charged): {len(bad_invoices)}"
            f" {bad_invoices[:3]}; trial/free with > 1: {len(extra_invoices)};"
            f" two e-mails of a kind to a customer: {len(repeated_mail)} {repeated_mail[:3]};"
            f" the same e-mail delivered again: {sent_again};"
            f" portal cancellations without exactly 1 e-mail: {len(cancel_mails)}",
        )
    )
    unconfirmed = [
        c
        for c in complete
        if mails.get(rows[c]["customer_email"].lower(), Counter())["checkout_completed"] != 1
    ]
    checks.append(
        Check(
            "a confirmation e-mail per completed checkout",
            not unconfirmed,
            f"{len(complete) - len(unconfirmed)} of {len(complete)} completed checkouts"
            f" confirmed by exactly one e-mail; not: {unconfirmed[:3]}",
        )
    )

    # 5. Invoice numbers: 1..n per organization.
    numbers: dict[str, list[int]] = defaultdict(list)
    for r in await sql.invoice_numbers(conn):
        m = re.search(r"(\d+)$", r["number"])
        numbers[r["org_id"]].append(int(m.group(1)) if m else -1)
    gaps = [org for org, ns in numbers.items() if sorted(ns) != list(range(1, len(ns) + 1))]
    checks.append(
        Check(
            "invoice numbers without gaps or repeats",
            not gaps,
            f"{sum(len(n) for n in numbers.values())} invoices in {len(numbers)} organizations;"
            f" organizations with a gap or repeat {len(gaps)}",
        )
    )

    # 6. Outboxes empty; dead-letter queues empty.
    pending = await sql.outbox_pending(conn)
    checks.append(Check("outbox tables empty", not any(pending.values()), f"unpublished {pending}"))
    non_empty = {q: n for q, n in dead_letters.items() if n}
    checks.append(
        Check(
            "dead-letter queues empty",
            not non_empty,
            f"{len(dead_letters)} queues; with messages {non_empty}",
        )
    )

    # 7. Revocations took effect on every gateway replica.
    effects = [t for r in revocations for t in r.effect.values()]
    missed = sum(1 for t in effects if t is None)
    took_all = [t for t in effects if t is not None]
    # The time to effect of a replica that was up all along, the broker up too.
    took = [
        t
        for r in revocations
        for url, t in r.effect.items()
        if t is not None
        and url not in r.interrupted
        and not any(start <= r.started <= end for start, end in broker_down)
    ]
    checks.append(
        Check(
            "revocations took effect on both gateways",
            bool(revocations) and not missed,
            f"{len(revocations)} revocations x {len(revocations[0].effect) if revocations else 0}"
            f" gateways; not in effect {missed}",
        )
    )
    p99 = pct(took, 99)
    checks.append(
        Check(
            "revocation time to effect p99 < 100 ms (goal)",
            p99 < REVOCATION_GOAL_SECONDS,
            f"replica and broker up: n={len(took)} p50 {pct(took, 50) * 1000:.0f} ms,"
            f" p99 {p99 * 1000:.0f} ms; all: n={len(took_all)} p99"
            f" {pct(took_all, 99) * 1000:.0f} ms, max"
            f" {max(took_all, default=float('nan')) * 1000:.0f} ms",
            counts=False,
        )
    )
    return checks


def latency_rows(outcomes: list[Outcome], windows: list[tuple[float, float]]) -> list[str]:
    """p50/p95 of checkout completion (flow start to its end), during a fault and not."""

    def during(o: Outcome) -> bool:
        return any(o.started < end and o.ended > start for start, end in windows)

    done = [o for o in outcomes if o.ok and o.status == "complete"]
    rows = []
    for label, group in (
        ("during faults", [o for o in done if during(o)]),
        ("outside faults", [o for o in done if not during(o)]),
    ):
        values = [o.ended - o.started for o in group]
        mean = statistics.fmean(values) if values else float("nan")
        rows.append(
            f"{label:<16} n={len(values):<5} p50 {pct(values, 50):6.2f} s"
            f"  p95 {pct(values, 95):6.2f} s  mean {mean:6.2f} s"
        )
    return rows
