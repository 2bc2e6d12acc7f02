"""Calls between services (never through the gateway): a pooled aiohttp client that
signs a `service` identity, so the callee trusts it the way it trusts the gateway.
Internal routes live under `/internal/...`, which the gateway never routes."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from bos_common.auth import IDENTITY_HEADER, Identity, sign_identity
from bos_common.context import request_id_var
from bos_common.errors import BOSError, ServiceUnavailable
from bos_common.telemetry import current_traceparent


class InternalClient:
    def __init__(
        self, base_url: str, *, caller: str, secret: str, timeout: float = 5.0, pool_size: int = 64
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._identity = Identity(principal_type="service", principal_id=caller)
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=2)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30),
                timeout=self._timeout,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        on_behalf_of: Identity | None = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body). A BOS error body from the callee is re-raised as
        the same BOSError; an unreachable callee is a 503."""
        identity = on_behalf_of or self._identity
        headers = {IDENTITY_HEADER: sign_identity(identity, self._secret)}
        rid = request_id_var.get()
        if rid:
            headers["x-request-id"] = rid
        traceparent = current_traceparent()
        if traceparent:
            headers["traceparent"] = traceparent
        try:
            async with self._client().request(
                method, self.base_url + path, json=json, params=params, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ServiceUnavailable(
                "dependency_unavailable", "A dependency is unavailable, please retry."
            ) from exc
        body = orjson.loads(raw) if raw else None
        if status >= 400 and isinstance(body, dict) and isinstance(body.get("error"), dict):
            err = body["error"]
            error = BOSError(
                err.get("code"), err.get("message"), status_code=status, param=err.get("param")
            )
            error.type = err.get("type", error.type)
            raise error from None
        return status, body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
