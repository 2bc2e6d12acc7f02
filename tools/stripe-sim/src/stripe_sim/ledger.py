"""Balances per account and currency, folded from balance transactions as Stripe keeps them.

A credit (a charge's net, a transfer received from a charge that is still pending) is
``pending`` until its due time (``available_on``), then ``available``; debits (refunds,
transfers out, reversals) take effect at once unless tied to a pending charge. The ledger
folds each new balance transaction of an account once, and flips pending ones when due
(lazily, on every read), so a balance read costs nothing per old transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .store import Obj, Store

#: key of a transaction's exact due time (epoch seconds, float) in its ``Meta.internal``
DUE_KEY = "due"


@dataclass(slots=True)
class Totals:
    available: int = 0
    pending: int = 0


@dataclass(slots=True)
class AccountLedger:
    folded: int = 0
    totals: dict[str, Totals] = field(default_factory=dict)
    pending_ids: list[str] = field(default_factory=list)


class Ledger:
    """``None`` is the platform; a connected account is its ``acct_`` id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.accounts: dict[str | None, AccountLedger] = {}

    def reset(self) -> None:
        self.accounts.clear()

    def refresh(self, account: str | None, *, settle_all: bool = False) -> AccountLedger:
        """Fold new transactions of ``account`` and release pending ones that are due."""
        ledger = self.accounts.setdefault(account, AccountLedger())
        txn_ids = self.store.ids_of_type("balance_transaction", account)
        if len(txn_ids) < ledger.folded:  # the store was reset or reloaded
            ledger = self.accounts[account] = AccountLedger()
        for txn_id in txn_ids[ledger.folded :]:
            self._fold(ledger, txn_id)
        ledger.folded = len(txn_ids)
        if ledger.pending_ids:
            self._release_due(ledger, settle_all)
        return ledger

    def totals(self, account: str | None, currency: str) -> Totals:
        return self.refresh(account).totals.get(currency, Totals())

    def settle(self, accounts: list[str | None] | None = None) -> int:
        """Make the pending transactions of ``accounts`` (default: of every account)
        available now; returns how many were released."""
        released = 0
        for key in self._known_accounts() if accounts is None else accounts:
            before = len(self.refresh(key).pending_ids)
            released += before - len(self.refresh(key, settle_all=True).pending_ids)
        return released

    def _known_accounts(self) -> list[str | None]:
        owners = {owner for (type_, owner) in self.store.by_type if type_ == "balance_transaction"}
        return list(owners)

    def _fold(self, ledger: AccountLedger, txn_id: str) -> None:
        txn = self.store.objects[txn_id]
        totals = ledger.totals.setdefault(txn["currency"], Totals())
        if txn["status"] == "pending":
            totals.pending += txn["net"]
            ledger.pending_ids.append(txn_id)
        else:
            totals.available += txn["net"]

    def _release_due(self, ledger: AccountLedger, settle_all: bool) -> None:
        now = time.time()
        still: list[str] = []
        for txn_id in ledger.pending_ids:
            txn = self.store.objects.get(txn_id)
            if txn is None:
                continue
            internal = self.store.internal(txn_id)
            if settle_all or internal.get(DUE_KEY, 0.0) <= now:
                make_available(txn, internal)
                totals = ledger.totals.setdefault(txn["currency"], Totals())
                totals.pending -= txn["net"]
                totals.available += txn["net"]
                self.store.touch()
            else:
                still.append(txn_id)
        ledger.pending_ids = still


def make_available(txn: Obj, internal: dict[str, float]) -> None:
    txn["status"] = "available"
    now = time.time()
    if internal.get(DUE_KEY, 0.0) > now:
        internal[DUE_KEY] = now
        txn["available_on"] = int(now)
