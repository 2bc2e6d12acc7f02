"""Idempotency-Key for public writes (docs/api.md "Idempotency").

Same key + same principal + same request within 24 h replays the first response byte
for byte (`Idempotent-Replayed: true`); the same key with a different request is 422
`idempotency_key_reused`; while the first is still running, 409 `idempotency_key_in_use`.
A 5xx is not remembered, so a client may retry after a transient failure, nor a 409
(the request conflicted with a state another request was changing, a payment still in
progress: nothing was done, and as with Stripe the retry runs again). Implemented
as pure ASGI middleware: it must see the raw body and the raw response.

The claim of a request being answered is a lease (bos_common.leases): `created_at` is
renewed while the request runs, and a claim not renewed for a lease (its process died)
is taken over by the client's retry, which runs the request again.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

import orjson
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bos_common.asgi import read_body, replay_body
from bos_common.auth import IDENTITY_HEADER, verify_identity
from bos_common.context import request_id_var
from bos_common.db import Database
from bos_common.errors import error_body
from bos_common.leases import DEFAULT_LEASE, LeaseRenewer

HEADER = b"idempotency-key"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
log = logging.getLogger("bos.idempotency")

RETENTION = timedelta(hours=24)
REPLAYED_HEADERS = {b"content-type", b"location"}


def idempotency_table(metadata: MetaData) -> Table:
    """`created_at`: when the key was claimed, renewed while its request runs (the
    claim's lease); `completed_at`: when the answer was stored (NULL while running)."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("principal", String(200), primary_key=True),
        Column("key", String(255), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer),
        Column("headers", JSONB),
        Column("body", LargeBinary),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("completed_at", DateTime(timezone=True)),
    )


def _error(status: int, type_: str, code: str, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps(error_body(type_, code, message, request_id_var.get()))


class IdempotencyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        db: Database,
        table: Table,
        secret: str,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.app = app
        self.db = db
        self.secret = secret
        self.lease = lease
        # Raw statements on the driver connection (Database.driver_connection): each is
        # atomic on its own, so no transaction is begun around them.
        name = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
        self._claim_sql = _claim_statement(name)
        self._complete_sql = (
            f"UPDATE {name} SET status_code = $3, headers = $4::jsonb, body = $5,"
            " completed_at = now() WHERE principal = $1 AND key = $2"
        )
        self._forget_sql = f"DELETE FROM {name} WHERE principal = $1 AND key = $2"
        self._renew_sql = (
            f"UPDATE {name} AS k SET created_at = now()"
            " FROM unnest($1::text[], $2::text[]) AS held(principal, key)"
            " WHERE k.principal = held.principal AND k.key = held.key"
            " AND k.completed_at IS NULL"
        )
        self.claims: LeaseRenewer[tuple[str, str]] = LeaseRenewer(
            "idempotency", self._renew, lease=lease
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not key or len(key) > 255:
            status, body = _error(
                400,
                "invalid_request",
                "idempotency_key_invalid",
                "Idempotency-Key must be 1 to 255 characters.",
            )
            await _send_json(send, status, body)
            return
        body = await read_body(receive)
        principal = self._principal(headers)
        request_hash = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), body])
        ).hexdigest()

        outcome = await self._begin(principal, key, request_hash)
        if outcome is not None:
            await _send_stored(send, *outcome)
            return

        # The response is held until the key is completed: a client that has seen it and
        # sends the same request again must get the replay, never 409 "in use".
        captured = _Capture()
        try:
            with self.claims.hold((principal, key)):
                await self.app(scope, replay_body(body, receive), captured)
        except BaseException:
            await self._forget(principal, key)
            raise
        if captured.status >= 500 or captured.status == 409:
            await self._forget(principal, key)
        else:
            await self._complete(principal, key, captured)
        await _send_stored(send, captured.status, captured.headers, bytes(captured.body))

    def _principal(self, headers: dict[bytes, bytes]) -> str:
        raw = headers.get(IDENTITY_HEADER.encode())
        identity = verify_identity(raw.decode(), self.secret) if raw else None
        return identity.principal_key if identity else "anonymous"

    async def _begin(
        self, principal: str, key: str, request_hash: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Claim the key, or return the stored/error response to send instead."""
        async with self.db.driver_connection() as conn:
            row = await conn.fetchrow(
                self._claim_sql,
                principal,
                key,
                request_hash,
                RETENTION.total_seconds(),
                self.lease.total_seconds(),
            )
        if row is not None and row["claimed"]:
            return None
        if row is None or row["completed_at"] is None:
            # Still running (or claimed by a concurrent request a moment ago, after this
            # statement's snapshot was taken: its row was not visible to the SELECT).
            status, body = _error(
                409,
                "conflict",
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed.",
            )
            return status, [], body
        if row["request_hash"] != request_hash:
            status, body = _error(
                422,
                "invalid_request",
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request.",
            )
            return status, [], body
        stored = row["headers"] or []
        if isinstance(stored, str):  # a connection without SQLAlchemy's jsonb codec
            stored = orjson.loads(stored)
        stored_headers = [(k.encode(), v.encode()) for k, v in stored]
        stored_headers.append((b"idempotent-replayed", b"true"))
        return row["status_code"], stored_headers, row["body"] or b""

    async def _renew(self, claims: list[tuple[str, str]]) -> None:
        async with self.db.driver_connection() as conn:
            await conn.execute(self._renew_sql, [p for p, _ in claims], [k for _, k in claims])

    async def _complete(self, principal: str, key: str, captured: _Capture) -> None:
        kept = [[k.decode(), v.decode()] for k, v in captured.headers if k in REPLAYED_HEADERS]
        async with self.db.driver_connection() as conn:
            await conn.execute(
                self._complete_sql,
                principal,
                key,
                captured.status,
                orjson.dumps(kept).decode(),
                bytes(captured.body),
            )

    async def _forget(self, principal: str, key: str) -> None:
        """Release the key so that the client's retry runs the request again. Never
        raises: the request's own answer (often a 503) is what the client must see.

        A failed request is often one that met a database restart, and then the next
        pooled connection is dead too: the release is tried once more, on a fresh one
        (the first failure retired the stale ones). Had it been lost, the retry would get
        409 `idempotency_key_in_use` until the claim's lease ran out."""
        for attempt in (1, 2):
            try:
                async with self.db.driver_connection() as conn:
                    await conn.execute(self._forget_sql, principal, key)
                return
            except Exception as exc:  # noqa: BLE001 - best effort, logged
                if attempt == 2:
                    log.warning(
                        "idempotency key not released; it is taken over after %ss",
                        int(self.lease.total_seconds()),
                        extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                    )


def _claim_statement(table: str) -> str:
    """One statement, one round trip: insert the claim, or take over an expired one or
    one whose lease ran out ($5 seconds without renewal); otherwise return the stored
    row."""
    return f"""
        WITH claimed AS (
            INSERT INTO {table} AS k (principal, key, request_hash, created_at)
            VALUES ($1, $2, $3, now())
            ON CONFLICT (principal, key) DO UPDATE
                SET request_hash = EXCLUDED.request_hash,
                    created_at = EXCLUDED.created_at,
                    status_code = NULL, headers = NULL, body = NULL, completed_at = NULL
                WHERE k.created_at < now() - make_interval(secs => $4)
                   OR (k.completed_at IS NULL
                       AND k.created_at < now() - make_interval(secs => $5))
            RETURNING 1
        )
        SELECT true AS claimed, NULL::text AS request_hash, NULL::int AS status_code,
               NULL::jsonb AS headers, NULL::bytea AS body, NULL::timestamptz AS completed_at
        FROM claimed
        UNION ALL
        SELECT false, request_hash, status_code, headers, body, completed_at
        FROM {table}
        WHERE principal = $1 AND key = $2 AND NOT EXISTS (SELECT 1 FROM claimed)
    """


class _Capture:
    """Keeps the response (small JSON bodies) to be sent once the key is settled."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [h for h in message.get("headers", []) if h[0] != b"content-length"]
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))


async def _send_json(send: Send, status: int, body: bytes) -> None:
    await _send_stored(send, status, [], body)


async def _send_stored(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    names = {k for k, _ in headers}
    out = list(headers)
    if b"content-type" not in names:
        out.append((b"content-type", b"application/json"))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
