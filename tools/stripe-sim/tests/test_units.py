"""Unit tests of the building blocks: form decoding, cards, signatures, idempotency expiry,
store pagination and snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import stripe

from stripe_sim import cards, errors, forms
from stripe_sim.config import parse_endpoints
from stripe_sim.idempotency import Entry, IdempotencyCache, digest
from stripe_sim.store import Store, paginate, read_snapshot, write_atomic
from stripe_sim.webhooks import Endpoint, sign


def test_decode_nested_lists_and_appends() -> None:
    data, pairs = forms.decode(
        "a[b][c]=1&items[0][price]=p1&items[1][price]=p2&expand[]=x&expand[]=y"
        "&expand2[0]=z&flag=true&empty="
    )
    assert data["a"] == {"b": {"c": "1"}}
    assert data["items"] == [{"price": "p1"}, {"price": "p2"}]
    assert data["expand"] == ["x", "y"]
    assert data["expand2"] == ["z"]
    assert data["flag"] == "true"
    assert data["empty"] == ""
    assert ("a[b][c]", "1") in pairs


def test_decode_orders_indexed_lists_by_index() -> None:
    data, _ = forms.decode("l[10]=k&l[2]=c&l[0]=a")
    assert data["l"] == ["a", "c", "k"]


def test_params_accessors_raise_stripe_errors() -> None:
    params = forms.Params({"amount": "12", "bad": "x", "on": "true", "nested": {"k": "v"}})
    assert params.integer("amount") == 12
    assert params.flag("on") is True
    assert params.mapping("nested") == {"k": "v"}
    with pytest.raises(errors.StripeError) as info:
        params.integer("bad")
    assert info.value.code == "parameter_invalid_integer"
    with pytest.raises(errors.StripeError) as info:
        params.req_string("missing")
    assert info.value.code == "parameter_missing"


def test_metadata_semantics() -> None:
    assert forms.apply_metadata({"a": "1"}, {"a": "", "b": "2"}) == {"b": "2"}
    assert forms.apply_metadata({"a": "1"}, "") == {}
    assert forms.apply_metadata({"a": "1"}, None) == {"a": "1"}
    with pytest.raises(errors.StripeError):
        forms.apply_metadata({}, {str(i): "v" for i in range(51)})


@pytest.mark.parametrize(
    ("number", "ok"),
    [("4242424242424242", True), ("4242424242424241", False), ("378282246310005", True)],
)
def test_luhn(number: str, ok: bool) -> None:
    assert cards.luhn_ok(number) is ok


def test_test_card_table() -> None:
    assert cards.BY_NUMBER["4000000000000002"].decline == cards.GENERIC
    assert cards.BY_NUMBER["4000000000009995"].decline == cards.INSUFFICIENT
    assert cards.BY_NUMBER["4000000000000341"].decline_on_attach is False
    assert cards.BY_NUMBER["4000002500003155"].three_ds is cards.ThreeDS.ON_SESSION
    assert cards.BY_NUMBER["4000002760003184"].three_ds is cards.ThreeDS.ALWAYS
    assert cards.BY_TOKEN["pm_card_visa"].number == "4242424242424242"
    assert cards.lookup_number("5105105105105100").funding == "prepaid"
    assert cards.lookup_number("6011000990139424").brand == "discover"
    with pytest.raises(errors.StripeError) as info:
        cards.lookup_number("1234")
    assert info.value.code == "incorrect_number"


def test_signature_verifies_with_the_official_sdk() -> None:
    payload = b'{"id": "evt_1", "object": "event", "type": "x", "data": {"object": {}}}'
    header = sign(payload, "whsec_unit", int(time.time()))
    event = stripe.Webhook.construct_event(payload, header, "whsec_unit")
    assert event.id == "evt_1"
    old = sign(payload, "whsec_unit", int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, old, "whsec_unit")


def test_idempotency_entries_expire_after_ttl() -> None:
    cache = IdempotencyCache(ttl=10)
    d = digest("POST", [("a", "1")])
    cache.save(None, "k1", Entry(time.time() - 11, "/v1/x", d, 200, b"{}", "req_1"))
    cache.save(None, "k2", Entry(time.time(), "/v1/x", d, 200, b"{}", "req_2"))
    assert cache.lookup(None, "k1", "/v1/x", d) is None
    assert cache.lookup(None, "k2", "/v1/x", d) is not None
    assert (None, "k1") not in cache.entries, "expired entries are pruned"
    with pytest.raises(errors.StripeError) as info:
        cache.lookup(None, "k2", "/v1/x", digest("POST", [("a", "2")]))
    assert info.value.type == "idempotency_error"
    assert digest("POST", [("a", "1"), ("b", "2")]) == digest("POST", [("b", "2"), ("a", "1")])


def _store_with(n: int) -> tuple[Store, list[str]]:
    store = Store()
    ids = []
    for i in range(n):
        store.add({"id": f"obj_{i}", "object": "thing"}, None)
        ids.append(f"obj_{i}")
    return store, ids


def _missing(object_id: str, param: str) -> Exception:
    return errors.no_such("thing", object_id, param=param, status=400)


def test_paginate_bisects_large_lists() -> None:
    store, ids = _store_with(50_000)
    page = paginate(
        store,
        store.ids_of_type("thing", None),
        limit=3,
        starting_after="obj_25000",
        ending_before=None,
        keep=store.is_live,
        missing=_missing,
    )
    assert page.ids == ["obj_24999", "obj_24998", "obj_24997"]
    assert page.has_more is True
    store.mark_deleted("obj_24998")
    page = paginate(
        store,
        ids,
        limit=2,
        starting_after="obj_25000",
        ending_before=None,
        keep=store.is_live,
        missing=_missing,
    )
    assert page.ids == ["obj_24999", "obj_24997"]


def test_store_snapshot_round_trip(tmp_path: Path) -> None:
    store, _ = _store_with(3)
    store.index_add("thing.tag", "red", "obj_1")
    store.seq_index_add("thing.seq", "all", "obj_2")
    path = tmp_path / "snap.json"
    write_atomic(str(path), orjson.dumps(store.dump()))
    loaded = Store()
    data = read_snapshot(str(path))
    assert data is not None
    loaded.load(data)
    assert loaded.get("obj_1", None) == {"id": "obj_1", "object": "thing"}
    assert loaded.index_ids("thing.tag", "red") == ["obj_1"]
    assert loaded.seq_index_ids("thing.seq", "all") == ["obj_2"]
    assert loaded.seq == store.seq
    assert loaded.get("obj_1", "acct_other") is None


def test_env_endpoints_take_their_enabled_event_types_from_a_third_field() -> None:
    specs = parse_endpoints(
        "http://a/hook|whsec_a|payment_intent.succeeded account.updated, http://b/hook"
    )
    assert [(s.url, s.secret, s.enabled_events) for s in specs] == [
        ("http://a/hook", "whsec_a", ["payment_intent.succeeded", "account.updated"]),
        ("http://b/hook", "whsec_test", None),
    ]
    endpoint = Endpoint(id="we_1", url="http://a/hook", secret="s", enabled_events=["a.b"])
    assert endpoint.wants({"type": "a.b"}) and not endpoint.wants({"type": "c.d"})
