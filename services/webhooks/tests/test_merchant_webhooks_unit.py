"""Merchant webhooks without a database: the retry schedule, what an attempt's result
means, which URLs and addresses are refused (SSRF), the signatures during a rotation and
the public event catalogue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bos_common.events import Envelope, SubscriptionCreatedV1, SubscriptionTrialWillEndV1
from webhooks.endpoints import catalogue, notice, service
from webhooks.endpoints.addresses import RefusedAddress, check_url, is_public
from webhooks.endpoints.notice import disabled_notice
from webhooks.endpoints.rows import Endpoint, SigningSecrets
from webhooks.endpoints.schedule import MAX_ATTEMPTS, retry_delay
from webhooks.endpoints.worker import signature_header
from webhooks.settings import WebhooksSettings


def settings(**env: str) -> WebhooksSettings:
    base = {
        "BOS_INTERNAL_SECRET": "x" * 20,
        "DATABASE_URL": "postgresql+asyncpg://localhost/x",
        "AMQP_URL": "amqp://localhost/",
        "STRIPE_WEBHOOK_SECRETS": "whsec_x",
        "STRIPE_SECRET_KEY": "sk_test_x",
        "TOKENS_URL": "http://127.0.0.1:9",
        # The defaults, whatever the environment of the test run says.
        "BOS_PROFILE": "dev",
        "MERCHANT_WEBHOOK_RETRY_BASE_SECONDS": "30",
        "MERCHANT_WEBHOOK_RETRY_CAP_SECONDS": "43200",
        "MERCHANT_WEBHOOK_MAX_ATTEMPTS": "12",
        "MERCHANT_WEBHOOK_DISABLE_AFTER_SECONDS": "259200",
    }
    return WebhooksSettings(**{**base, **env})  # type: ignore[arg-type]


# --- schedule ------------------------------------------------------------------------------


def test_the_schedule_grows_exponentially_and_spans_about_three_days() -> None:
    nominal = [retry_delay(n, rand=lambda: 0.5) for n in range(1, MAX_ATTEMPTS)]
    assert nominal[:4] == [30, 120, 480, 1920]
    assert all(d is not None and d <= 12 * 3600 for d in nominal)
    total = sum(d for d in nominal if d is not None)
    assert 2.5 * 86400 < total < 3.5 * 86400
    assert retry_delay(MAX_ATTEMPTS) is None


def test_jitter_stays_within_twenty_percent() -> None:
    assert retry_delay(2, rand=lambda: 0.0) == pytest.approx(120 * 0.8)
    assert retry_delay(2, rand=lambda: 0.999999) == pytest.approx(120 * 1.2, rel=1e-5)
    assert retry_delay(1, base_seconds=0.3, rand=lambda: 0.5) == pytest.approx(0.3)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        retry_delay(0)


# --- the result of an attempt ----------------------------------------------------------------


def test_after_attempt_success_failure_exhaustion_and_disabling() -> None:
    s = settings()
    now = datetime(2026, 12, 7, tzinfo=UTC)
    ok = service.after_attempt(s, ok=True, attempts=3, failing_since=None, now=now)
    assert (ok.status, ok.next_attempt_at, ok.disable_endpoint) == ("succeeded", None, False)
    retry = service.after_attempt(
        s, ok=False, attempts=1, failing_since=now, now=now, rand=lambda: 0.5
    )
    assert (retry.status, retry.next_attempt_at) == ("pending", now + timedelta(seconds=30))
    assert not retry.disable_endpoint
    last = service.after_attempt(s, ok=False, attempts=MAX_ATTEMPTS, failing_since=now, now=now)
    assert (last.status, last.next_attempt_at) == ("failed", None)
    days = service.after_attempt(
        s, ok=False, attempts=2, failing_since=now - timedelta(days=3, seconds=1), now=now
    )
    assert days.disable_endpoint and days.status == "pending"


def test_a_disabled_endpoint_is_told_to_the_organizations_address() -> None:
    disabled_at = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    endpoint = Endpoint(
        id="we_1",
        org_id="org_1",
        url="https://shop.example.com/hooks",
        description=None,
        event_types=[],
        status="disabled",
        disabled_reason="every delivery failed since 2026-12-04T10:00:00Z",
        disabled_at=disabled_at,
        previous_secret_expires_at=None,
        failing_since=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
        created_at=disabled_at - timedelta(days=30),
        updated_at=disabled_at,
    )
    org = {"id": "org_1", "name": "Shop", "notification_email": "ops@shop.example.com"}
    message = disabled_notice(endpoint, org, "webhooks@bos.example.com")
    assert message is not None
    assert (message["To"], message["From"]) == ("ops@shop.example.com", "webhooks@bos.example.com")
    assert message["X-BOS-Notification"] == "webhook_endpoint_disabled"
    text = message.get_content()
    for fact in ("we_1", "https://shop.example.com/hooks", "2026-12-04T10:00:00Z", "2026-12-07"):
        assert fact in text
    # No address to write to: no e-mail (the endpoint's disabled_reason still says it).
    assert disabled_notice(endpoint, {**org, "notification_email": None}, "x@y.z") is None


# --- addresses (SSRF) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.4",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "100.64.0.1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "fd00::1",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


def test_public_addresses_are_public() -> None:
    assert is_public("93.184.216.34") and is_public("2606:4700::1111")


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hook",
        "https://localhost/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "not a url",
    ],
)
def test_production_refuses_private_or_plain_http_urls(url: str) -> None:
    s = settings(BOS_PROFILE="production")
    assert s.is_production and not s.allow_private_endpoints
    with pytest.raises(RefusedAddress):
        check_url(url, require_https=True, allow_private=s.allow_private_endpoints)


def test_production_accepts_a_public_https_url() -> None:
    assert check_url("https://example.com/hook", require_https=True, allow_private=False) == (
        "example.com"
    )


def test_dev_and_test_allow_a_local_receiver_by_default_and_a_setting_overrides() -> None:
    assert settings(BOS_PROFILE="test").allow_private_endpoints
    assert check_url("http://127.0.0.1:19530/", require_https=False, allow_private=True)
    strict = settings(BOS_PROFILE="test", MERCHANT_WEBHOOKS_ALLOW_PRIVATE="false")
    assert not strict.allow_private_endpoints


async def test_registration_in_production_is_a_400_url_invalid() -> None:
    from bos_common.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        await service.check_endpoint_url(settings(BOS_PROFILE="production"), "https://127.0.0.1/")
    assert (caught.value.code, caught.value.param) == ("url_invalid", "url")


# --- signatures --------------------------------------------------------------------------------


def test_during_a_rotation_either_secret_verifies_and_after_it_only_the_new_one() -> None:
    old, new = service.new_secret(), service.new_secret()
    assert new.startswith("whsec_") and new != old
    now = datetime.now(UTC)
    payload = '{"id":"evt_1","type":"checkout.completed"}'
    row = SigningSecrets(new, old, now + timedelta(hours=24))
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature_header(row, "evt_1", now, payload, now),
    }
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(payload, headers)["id"] == "evt_1"
    later = now + timedelta(hours=25)
    headers["webhook-signature"] = signature_header(row, "evt_1", now, payload, later)
    Webhook(new).verify(payload, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(payload, headers)


# --- catalogue ---------------------------------------------------------------------------------


def test_every_source_makes_a_catalogued_type() -> None:
    assert {s.public_type for s in catalogue.SOURCES.values()} <= set(catalogue.EVENT_TYPES)
    assert all(
        s.kind in catalogue.OBJECT_ROUTES or s.kind == "refund" for s in catalogue.SOURCES.values()
    )


def test_an_internal_event_maps_to_its_public_type_and_object() -> None:
    now = datetime.now(UTC)
    event = SubscriptionCreatedV1(
        subscription_id="sub_1",
        customer_id="cus_1",
        product_id="prod_1",
        price_id="price_1",
        status="active",
        is_free=False,
        amount=100,
        currency="usd",
        current_period_start=now,
        created_at=now,
    )
    envelope = Envelope.wrap(event, producer="subscriptions", org_id="org_1", event_id=uuid.uuid4())
    source, object_id = catalogue.source_of(envelope.event_type, envelope.data) or (None, None)
    assert source is not None and (source.public_type, source.kind, object_id) == (
        "subscription.created",
        "subscription",
        "sub_1",
    )
    assert catalogue.source_of("organization.updated.v1", {}) is None
    body = catalogue.body("evt_1", "subscription.created", 1, {"id": "sub_1"})
    assert body == {
        "id": "evt_1",
        "type": "subscription.created",
        "created": 1,
        "api_version": catalogue.API_VERSION,
        "data": {"object": {"id": "sub_1"}},
    }


def test_every_public_type_but_the_test_event_has_a_source() -> None:
    assert {s.public_type for s in catalogue.SOURCES.values()} == set(catalogue.EVENT_TYPES)


def test_a_trial_reminder_makes_subscription_trial_will_end() -> None:
    event = SubscriptionTrialWillEndV1(
        subscription_id="sub_9",
        customer_id="cus_1",
        product_id="prod_1",
        trial_end=datetime(2026, 12, 10, tzinfo=UTC),
    )
    envelope = Envelope.wrap(event, producer="subscriptions", org_id="org_1", event_id=uuid.uuid4())
    found = catalogue.source_of(envelope.event_type, envelope.data)
    assert found is not None
    source, object_id = found
    assert (source.public_type, source.kind, object_id) == (
        "subscription.trial_will_end",
        "subscription",
        "sub_9",
    )


def test_a_checkout_is_sent_once_complete() -> None:
    assert not catalogue.is_ready("checkout_session", {"status": "processing"})
    assert catalogue.is_ready("checkout_session", {"status": "complete"})
    assert catalogue.is_ready("subscription", {"status": "trialing"})


def test_notice_retries_double_up_to_an_hour_then_stop() -> None:
    delays = [notice.retry_delay(n) for n in range(1, notice.MAX_ATTEMPTS + 1)]
    assert delays[0] is not None and delays[0].total_seconds() == 2
    assert all(d is not None and d.total_seconds() <= 3600 for d in delays[:-1])
    assert delays[-1] is None
