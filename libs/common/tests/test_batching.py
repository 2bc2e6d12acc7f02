"""GroupCommit (bos_common.batching): rows that arrive while writers are busy are written
together, a lone row at once, a row error isolated, any other error every row's answer."""

from __future__ import annotations

import asyncio

import pytest

from bos_common.batching import GroupCommit


class BadRow(Exception):
    pass


class Statements:
    """A fake statement: records each batch; a row "bad" fails its whole batch."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, rows: list[str]) -> list[str]:
        self.batches.append(list(rows))
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        if "bad" in rows:
            raise BadRow(rows)
        return [f"ok:{r}" for r in rows]


def group(statements: Statements, writers: int = 2) -> GroupCommit[str, str]:
    return GroupCommit(statements, writers=writers, max_batch=3, row_errors=(BadRow,))


async def test_a_lone_row_is_written_at_once() -> None:
    statements = Statements()
    commit = group(statements)
    assert await asyncio.wait_for(commit.submit("a"), 1) == "ok:a"
    assert await commit.submit("b") == "ok:b"
    assert statements.batches == [["a"], ["b"]]
    await commit.close()


async def test_rows_arriving_while_writers_are_busy_share_a_statement() -> None:
    statements = Statements()
    statements.gate.clear()
    commit = group(statements, writers=1)
    first = asyncio.ensure_future(commit.submit("a"))
    await asyncio.sleep(0)  # "a" is in flight
    rest = [asyncio.ensure_future(commit.submit(r)) for r in "bcde"]
    await asyncio.sleep(0)
    statements.gate.set()
    assert await first == "ok:a"
    assert [await r for r in rest] == ["ok:b", "ok:c", "ok:d", "ok:e"]
    assert statements.batches == [["a"], ["b", "c", "d"], ["e"]]  # max_batch 3
    await commit.close()


async def test_a_row_error_fails_that_row_alone() -> None:
    statements = Statements()
    commit = group(statements)
    results = await asyncio.gather(
        *(commit.submit(r) for r in ["a", "bad", "c"]), return_exceptions=True
    )
    assert results[0] == "ok:a" and results[2] == "ok:c"
    assert isinstance(results[1], BadRow)
    assert statements.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    await commit.close()


async def test_any_other_error_is_every_waiting_rows_answer() -> None:
    statements = Statements(fail=ConnectionRefusedError())
    commit = group(statements)
    results = await asyncio.gather(*(commit.submit(r) for r in "abc"), return_exceptions=True)
    assert all(isinstance(r, ConnectionRefusedError) for r in results)
    assert statements.batches == [["a", "b", "c"]]  # not retried row by row
    await commit.close()


async def test_close_writes_what_is_queued_then_refuses() -> None:
    statements = Statements()
    commit = group(statements)
    pending = [asyncio.ensure_future(commit.submit(str(i))) for i in range(7)]
    await asyncio.sleep(0)
    await commit.close()
    assert [await p for p in pending] == [f"ok:{i}" for i in range(7)]
    with pytest.raises(RuntimeError):
        await commit.submit("late")
