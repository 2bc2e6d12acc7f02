"""The e-mail telling a merchant BOS disabled its endpoint, against real Postgres and a real
SMTP server (aiosmtpd): owed from the disabling on, sent once SMTP answers again, never
sent twice by notifiers claiming at the same time, not sent once the endpoint is enabled."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import update

from bos_common.db import Database
from bos_common.ids import new_id
from bos_common.testing import Infra, migrate
from webhooks.endpoints import notice, repository, service
from webhooks.endpoints.models import webhook_endpoints
from webhooks.endpoints.notice import DisabledNotifier
from webhooks.endpoints.schemas import EndpointUpdate

pytestmark = pytest.mark.integration


class _Inbox:
    """aiosmtpd handler: keeps the messages it accepts; slow on purpose when asked, so
    concurrent senders overlap."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        message = BytesParser(policy=default_policy).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


class _Tokens:
    """Stands for tokens' internal API: every organization writes to ops@<org>.example."""

    async def request(self, method: str, path: str, **_: Any) -> tuple[int, dict[str, Any]]:
        org = path.rsplit("/", 1)[-1]
        return 200, {"id": org, "name": org, "notification_email": f"ops@{org}.example"}

    async def close(self) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def db(infra: Infra) -> AsyncIterator[Database]:
    await migrate(infra.database_url, "webhooks")
    database = Database(infra.database_url, "webhooks", pool_size=4)
    yield database
    await database.dispose()


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def smtp() -> Iterator[Any]:
    """Starts an SMTP server on a port when called; stopped at the end."""
    started: list[Controller] = []

    def start(port: int, inbox: _Inbox) -> None:
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        started.append(controller)

    yield start
    for controller in started:
        controller.stop()


def _notifier(db: Database, port: int) -> DisabledNotifier:
    return DisabledNotifier(db, _Tokens(), f"smtp://127.0.0.1:{port}", "webhooks@bos.example")  # type: ignore[arg-type]


async def _disabled_endpoint(db: Database, org: str) -> str:
    async with db.transaction() as s:
        row = await repository.insert_endpoint(
            s,
            id=new_id(service.ENDPOINT_PREFIX),
            org_id=org,
            url="https://shop.example/hooks",
            event_types=[],
            description=None,
            secret=service.new_secret(),
        )
        assert await repository.disable_endpoint(s, row.id, "every delivery failed")
    return row.id


async def _owed(db: Database, endpoint_id: str) -> tuple[Any, int]:
    async with db.transaction() as s:
        row = (
            (
                await s.execute(
                    webhook_endpoints.select().where(webhook_endpoints.c.id == endpoint_id)
                )
            )
            .mappings()
            .one()
        )
    return row["disabled_notice_due_at"], row["disabled_notice_attempts"]


async def _due_now(db: Database, endpoint_id: str) -> None:
    """As if the retry's wait had passed."""
    async with db.transaction() as s:
        await s.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(disabled_notice_due_at=webhook_endpoints.c.disabled_at)
        )


async def test_the_notice_is_sent_once_smtp_is_back(db: Database, port: int, smtp: Any) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    endpoint_id = await _disabled_endpoint(db, org)
    notifier = _notifier(db, port)
    # Nothing listens on the port: the attempt fails, the notice is owed again later.
    assert await notifier.send_due() >= 1
    due, attempts = await _owed(db, endpoint_id)
    assert due is not None and attempts == 1
    inbox = _Inbox()
    smtp(port, inbox)
    await _due_now(db, endpoint_id)
    await notifier.send_due()
    [message] = [m for m in inbox.messages if m["To"] == f"ops@{org}.example"]
    assert message["X-BOS-Notification"] == notice.KIND
    assert endpoint_id in message.get_content()
    assert (await _owed(db, endpoint_id))[0] is None
    # Settled: a later pass claims nothing and sends nothing more.
    assert await notifier.send_due() == 0 or (await _owed(db, endpoint_id))[0] is None
    assert len([m for m in inbox.messages if m["To"] == f"ops@{org}.example"]) == 1


async def test_two_notifiers_never_send_a_notice_twice(db: Database, port: int, smtp: Any) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    endpoints = [await _disabled_endpoint(db, org) for _ in range(6)]
    inbox = _Inbox(delay=0.05)
    smtp(port, inbox)
    first, second = _notifier(db, port), _notifier(db, port)
    for _ in range(5):
        await asyncio.gather(first.send_due(limit=2), second.send_due(limit=2))
    sent = Counter(
        str(m.get_content()).split("endpoint ", 1)[1].split(" ", 1)[0]
        for m in inbox.messages
        if m["To"] == f"ops@{org}.example"
    )
    assert sent == Counter(endpoints)  # each one, once
    for endpoint_id in endpoints:
        assert (await _owed(db, endpoint_id)) == (None, 1)


async def test_an_endpoint_enabled_again_is_owed_no_notice(
    db: Database, port: int, smtp: Any
) -> None:
    org = f"org_{uuid.uuid4().hex[:10]}"
    endpoint_id = await _disabled_endpoint(db, org)
    async with db.transaction() as s:
        await service.update_endpoint(
            None,  # type: ignore[arg-type]
            s,
            org,
            endpoint_id,
            EndpointUpdate(status="enabled"),
        )
    inbox = _Inbox()
    smtp(port, inbox)
    await _notifier(db, port).send_due()
    assert [m for m in inbox.messages if m["To"] == f"ops@{org}.example"] == []
    assert (await _owed(db, endpoint_id))[0] is None
