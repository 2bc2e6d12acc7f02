"""Rate limits (plan 14.4; docs/api.md "Rate limits") on the limits library, in memory."""

from __future__ import annotations

import pytest

from bos_common.auth import ANONYMOUS, Identity
from bos_common.errors import RateLimited
from gateway.ratelimit import RateLimiter, async_storage_uri

SESSION = Identity(principal_type="session", principal_id="sess_1", org_id="org_1")
API_KEY = Identity(principal_type="api_key", principal_id="key_1", org_id="org_1")
ADMIN = Identity(principal_type="admin", principal_id="admin")


def limiter(**kw: object) -> RateLimiter:
    args: dict[str, object] = {"api_key": "100/second", "session": "60/minute", "ip": "60/minute"}
    args.update(kw)
    return RateLimiter(**args)  # type: ignore[arg-type]


async def count_allowed(
    rl: RateLimiter,
    identity: Identity,
    n: int,
    *,
    path: str = "/v1/x",
    ip: str | None = "10.0.0.1",
    overrides: dict[str, str] | None = None,
) -> tuple[int, RateLimited | None]:
    allowed, last = 0, None
    for _ in range(n):
        try:
            await rl.check(identity, path, ip, overrides or {})
            allowed += 1
        except RateLimited as exc:
            last = exc
    return allowed, last


async def test_14_4_session_100_requests_in_a_minute_are_cut_after_60() -> None:
    allowed, error = await count_allowed(limiter(), SESSION, 100)
    assert allowed == 60
    assert error is not None and error.status_code == 429 and error.code == "rate_limited"
    assert 1 <= int(error.headers["Retry-After"]) <= 60


async def test_14_4_unauthenticated_ip_is_cut_after_60_per_minute() -> None:
    rl = limiter()
    allowed, error = await count_allowed(rl, ANONYMOUS, 100, ip="10.0.0.9")
    assert allowed == 60 and error is not None
    other_ip, _ = await count_allowed(rl, ANONYMOUS, 5, ip="10.0.0.10")
    assert other_ip == 5  # per address


async def test_api_key_default_is_100_per_second() -> None:
    allowed, error = await count_allowed(limiter(), API_KEY, 150)
    assert allowed == 100 and error is not None
    assert error.headers["Retry-After"] == "1"


async def test_stripe_webhooks_and_the_admin_token_are_not_limited() -> None:
    rl = limiter(ip="1/minute")
    allowed, _ = await count_allowed(rl, ANONYMOUS, 20, path="/v1/webhooks/stripe")
    assert allowed == 20
    allowed, _ = await count_allowed(rl, ADMIN, 200)
    assert allowed == 200


async def test_limits_are_configurable_per_deployment_and_per_organization() -> None:
    rl = limiter(session="5/minute")
    assert (await count_allowed(rl, SESSION, 10))[0] == 5
    rl = limiter()
    wide = Identity(principal_type="session", principal_id="sess_2", org_id="org_2")
    assert (await count_allowed(rl, wide, 100, overrides={"session": "80/minute"}))[0] == 80
    tight = Identity(principal_type="api_key", principal_id="key_2", org_id="org_2")
    assert (await count_allowed(rl, tight, 10, overrides={"api_key": "3/second"}))[0] == 3
    # A malformed override falls back to the default instead of failing requests.
    odd = Identity(principal_type="session", principal_id="sess_3", org_id="org_3")
    assert (await count_allowed(rl, odd, 70, overrides={"session": "lots"}))[0] == 60


async def test_disabled_limits_let_everything_through() -> None:
    assert (await count_allowed(limiter(enabled=False, session="1/minute"), SESSION, 10))[0] == 10


async def test_a_storage_outage_lets_requests_through() -> None:
    class Broken:
        def hit(self, *_: object) -> bool:
            raise ConnectionError("redis is down")

    rl = limiter()
    rl._memory = Broken()  # type: ignore[assignment]
    assert (await count_allowed(rl, SESSION, 3))[0] == 3


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("redis://r:6379/0", "async+redis://r:6379/0"),
        ("async+redis://r:6379", "async+redis://r:6379"),
    ],
)
def test_redis_urls_use_the_async_storage(url: str, uri: str) -> None:
    assert async_storage_uri(url) == uri


def test_moving_window_in_memory_never_lets_more_through_in_any_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from limits import parse
    from limits.strategies import MovingWindowRateLimiter

    from gateway import ratelimit

    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    storage = ratelimit.LoopMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/minute")
    hits = []
    for at in (0, 10, 20, 30, 59.9, 60.1, 61, 75):
        clock[0] = 1000.0 + at
        hits.append(limiter.hit(item, "k"))
    # 0, 10, 20 pass; 30 and 59.9 are refused; at 60.1 the hit of 0 has left the window;
    # 61 is refused (10, 20, 60.1 inside); at 75 the hit of 10 has left.
    assert hits == [True, True, True, False, False, True, False, True]
    clock[0] = 1000.0 + 76
    stats = limiter.get_window_stats(item, "k")  # 20, 60.1 and 75 inside
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(1000.0 + 20 + 60)
    clock[0] = 1000.0 + 80.1
    assert limiter.hit(item, "k")
    # Quiet keys are swept once a minute.
    clock[0] = 1000.0 + 400
    storage._next_sweep = 0
    limiter.hit(item, "other")
    assert list(storage.events) == [item.key_for("other")]
