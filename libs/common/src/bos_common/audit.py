"""The audit trail (plan 18.3): one structured log line per business action, on the
`bos.audit` logger, so that "who did what to which object, when" can be answered from the
logs alone: `action` (e.g. `checkout.created`), the actor (`actor_type`: api_key,
session, portal, admin, service, or `stripe` / `system` for what a webhook or a worker
decided; `actor_id`, `org_id`, `external_user_id`), the object's ids, and what the
logging setup adds to every line: `timestamp` (UTC, microseconds), `service`,
`request_id`, `trace_id` (the same trace as the request that caused it). Secrets and card
numbers are redacted like in any line.

A line is written only for what happened: after its transaction committed (see
`bos_common.db.after_commit`; a rolled-back batch of events writes none)."""

from __future__ import annotations

from typing import Any

from bos_common.auth import Identity
from bos_common.logging import get_logger

_log = get_logger("bos.audit")


def audit(
    action: str,
    *,
    actor_type: str,
    actor_id: str | None = None,
    org_id: str | None = None,
    external_user_id: str | None = None,
    **subject: Any,
) -> None:
    _log.info(
        action,
        audit=True,
        actor_type=actor_type,
        actor_id=actor_id,
        org_id=org_id,
        external_user_id=external_user_id,
        **subject,
    )


def audit_by(action: str, identity: Identity, **subject: Any) -> None:
    """An action taken by the caller of a request."""
    audit(
        action,
        actor_type=identity.principal_type,
        actor_id=identity.principal_id,
        org_id=subject.pop("org_id", None) or identity.org_id,
        external_user_id=identity.external_user_id,
        **subject,
    )
