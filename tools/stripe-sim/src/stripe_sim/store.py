"""In-memory object store with per-owner type lists and secondary indexes.

Every object is a plain dict holding exactly its API representation. Simulator-only facts
(owner account, the test card behind a PaymentMethod, ...) live in ``Meta``. Lookups are
dict hits; lists walk a per-(type, owner) creation-ordered list from a bisected position, or
a small secondary index (payment methods of a customer, events of a type, ...).
"""

from __future__ import annotations

import bisect
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

Obj = dict[str, Any]

SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class Meta:
    seq: int
    account: str | None
    internal: dict[str, Any] = field(default_factory=dict)


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.meta: dict[str, Meta] = {}
        self.by_type: dict[tuple[str, str | None], list[str]] = {}
        self.index: dict[str, dict[str, dict[str, None]]] = {}
        self.seq_index: dict[str, dict[str, list[str]]] = {}
        self.seq = 0
        self.changes = 0

    # -- objects -----------------------------------------------------------------------
    def add(self, obj: Obj, account: str | None, internal: dict[str, Any] | None = None) -> Obj:
        self.seq += 1
        object_id = obj["id"]
        self.objects[object_id] = obj
        self.meta[object_id] = Meta(self.seq, account, internal or {})
        self.by_type.setdefault((obj["object"], account), []).append(object_id)
        self.changes += 1
        return obj

    def get(self, object_id: str, account: str | None) -> Obj | None:
        """The object if it exists and belongs to ``account`` (None = the platform)."""
        meta = self.meta.get(object_id)
        if meta is None or meta.account != account or meta.internal.get("deleted"):
            return None
        return self.objects[object_id]

    def get_any(self, object_id: str) -> Obj | None:
        return self.objects.get(object_id)

    def owner(self, object_id: str) -> str | None:
        meta = self.meta.get(object_id)
        return meta.account if meta else None

    def internal(self, object_id: str) -> dict[str, Any]:
        return self.meta[object_id].internal

    def touch(self) -> None:
        self.changes += 1

    def seq_of(self, object_id: str) -> int:
        return self.meta[object_id].seq

    def is_live(self, object_id: str) -> bool:
        meta = self.meta.get(object_id)
        return meta is not None and not meta.internal.get("deleted")

    def mark_deleted(self, object_id: str) -> None:
        self.meta[object_id].internal["deleted"] = True
        self.changes += 1

    def ids_of_type(self, type_: str, account: str | None) -> list[str]:
        return self.by_type.get((type_, account), [])

    def count(self) -> int:
        return len(self.objects)

    # -- secondary indexes (ordered sets) ------------------------------------------------
    def index_add(self, name: str, value: str | None, object_id: str) -> None:
        if value is None:
            return
        self.index.setdefault(name, {}).setdefault(value, {})[object_id] = None

    def index_remove(self, name: str, value: str | None, object_id: str) -> None:
        if value is None:
            return
        bucket = self.index.get(name, {}).get(value)
        if bucket is not None:
            bucket.pop(object_id, None)

    def index_ids(self, name: str, value: str) -> list[str]:
        return list(self.index.get(name, {}).get(value, {}))

    # -- append-only indexes, kept in creation order (bisectable) -------------------------
    def seq_index_add(self, name: str, value: str | None, object_id: str) -> None:
        if value is None:
            return
        self.seq_index.setdefault(name, {}).setdefault(value, []).append(object_id)

    def seq_index_ids(self, name: str, value: str) -> list[str]:
        return self.seq_index.get(name, {}).get(value, [])

    # -- lifecycle -----------------------------------------------------------------------
    def reset(self) -> None:
        self.objects.clear()
        self.meta.clear()
        self.by_type.clear()
        self.index.clear()
        self.seq_index.clear()
        self.changes += 1

    def dump(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "seq": self.seq,
            "objects": self.objects,
            "meta": {k: [m.seq, m.account, m.internal] for k, m in self.meta.items()},
            "by_type": [[t, a, ids] for (t, a), ids in self.by_type.items()],
            "index": {n: {v: list(ids) for v, ids in b.items()} for n, b in self.index.items()},
            "seq_index": self.seq_index,
        }

    def load(self, data: dict[str, Any]) -> None:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {data.get('version')!r}")
        self.reset()
        self.seq = data["seq"]
        self.objects.update(data["objects"])
        for key, (seq, account, internal) in data["meta"].items():
            self.meta[key] = Meta(seq, account, internal)
        for type_, account, ids in data["by_type"]:
            self.by_type[(type_, account)] = ids
        for name, buckets in data["index"].items():
            self.index[name] = {v: dict.fromkeys(ids) for v, ids in buckets.items()}
        self.seq_index.update(data["seq_index"])


# -- pagination ------------------------------------------------------------------------


@dataclass(slots=True)
class Page:
    ids: list[str]
    has_more: bool


def _position(ids: list[str], anchor: str, store: Store, sorted_by_seq: bool) -> int:
    if anchor not in store.meta:
        return -1
    if sorted_by_seq:
        seq = store.seq_of(anchor)
        pos = bisect.bisect_left(ids, seq, key=store.seq_of)
        if pos < len(ids) and ids[pos] == anchor:
            return pos
        return -1
    try:
        return ids.index(anchor)
    except ValueError:
        return -1


def _walk(ids: list[str], start: int, step: int) -> Iterator[str]:
    i = start
    while 0 <= i < len(ids):
        yield ids[i]
        i += step


def paginate(
    store: Store,
    ids: list[str],
    *,
    limit: int,
    starting_after: str | None,
    ending_before: str | None,
    keep: Callable[[str], bool],
    newest_first: bool = True,
    sorted_by_seq: bool = True,
    missing: Callable[[str, str], Exception],
) -> Page:
    """Stripe cursor pagination over ``ids`` (oldest first). ``keep`` filters entries."""
    forward = -1 if newest_first else 1  # direction of "after"
    if starting_after is not None:
        anchor = _position(ids, starting_after, store, sorted_by_seq)
        if anchor < 0:
            raise missing(starting_after, "starting_after")
        start, step = anchor + forward, forward
    elif ending_before is not None:
        anchor = _position(ids, ending_before, store, sorted_by_seq)
        if anchor < 0:
            raise missing(ending_before, "ending_before")
        start, step = anchor - forward, -forward
    else:
        start, step = (len(ids) - 1 if newest_first else 0), forward
    out: list[str] = []
    has_more = False
    for object_id in _walk(ids, start, step):
        if not keep(object_id):
            continue
        if len(out) == limit:
            has_more = True
            break
        out.append(object_id)
    if ending_before is not None:
        out.reverse()
    return Page(out, has_more)


# -- snapshots -------------------------------------------------------------------------


def write_atomic(path: str, payload: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".stripe-sim-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_snapshot(path: str) -> dict[str, Any] | None:
    if not os.path.exists(path):
        return None
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        return None
    loaded: dict[str, Any] = orjson.loads(data)
    return loaded
