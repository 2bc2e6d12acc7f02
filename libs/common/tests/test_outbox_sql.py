"""The outbox's statement fragments for set-based writes: one column list, one typing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql

from bos_common.events import ApiKeyRevokedV1, Envelope
from bos_common.outbox import (
    array_params,
    insert_arrays,
    insert_sql,
    notify,
    notify_sql,
    outbox_arrays,
    outbox_row,
    outbox_table,
    unnest_sql,
)


def test_insert_names_the_schema_qualified_outbox_and_its_four_columns() -> None:
    table = outbox_table(MetaData(schema="checkout"))
    sql = insert_sql(table, unnest_sql("$1", "$2", "$3", "$4"))
    assert sql == (
        "INSERT INTO checkout.outbox (event_id, event_type, org_id, envelope) "
        "SELECT * FROM unnest(CAST($1 AS uuid[]), CAST($2 AS text[]), "
        "CAST($3 AS text[]), CAST($4 AS jsonb[]))"
    )
    assert notify_sql(":c") == "SELECT pg_notify(:c, '')"


def test_arrays_keep_each_rows_fields_in_step() -> None:
    rows = [
        outbox_row(
            ApiKeyRevokedV1(key_id=f"key_{n}", org_id=f"org_{n}", revoked_at=datetime.now(UTC)),
            producer="tokens",
            org_id=f"org_{n}",
        )
        for n in range(3)
    ]
    ids, types, orgs, envelopes = outbox_arrays(rows)
    assert orgs == ["org_0", "org_1", "org_2"]
    assert types == ["api_key.revoked.v1"] * 3
    for event_id, envelope in zip(ids, envelopes, strict=True):
        assert Envelope.model_validate_json(envelope).event_id == event_id


def test_the_core_insert_reads_the_four_arrays_array_params_names() -> None:
    table = outbox_table(MetaData(schema="subscriptions"))
    compiled = insert_arrays(table, "ob_").compile(dialect=postgresql.dialect())
    sql = " ".join(str(compiled).split())
    assert sql.startswith(
        "INSERT INTO subscriptions.outbox (event_id, event_type, org_id, envelope) SELECT"
    )
    assert (
        "FROM unnest(%(ob_event_id)s::UUID[], %(ob_event_type)s::TEXT[], "
        "%(ob_org_id)s::TEXT[], %(ob_envelope)s::JSONB[])"
    ) in sql
    row = outbox_row(
        ApiKeyRevokedV1(key_id="key_1", org_id="org_1", revoked_at=datetime.now(UTC)),
        producer="tokens",
        org_id="org_1",
    )
    params = array_params([row], "ob_")
    assert sorted(params) == sorted(compiled.params)
    assert params["ob_envelope"] == [row["envelope"]]
    notify_sql_text = str(notify(table).compile(compile_kwargs={"literal_binds": True}))
    assert "pg_notify('subscriptions_outbox', '')" in notify_sql_text
