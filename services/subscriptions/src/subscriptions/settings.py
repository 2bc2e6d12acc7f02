from typing import ClassVar

from pydantic import Field

from bos_common.settings import ServiceSettings


class SubscriptionsSettings(ServiceSettings):
    service_name: ClassVar[str] = "subscriptions"

    # Scheduler: how often each replica looks for due subscriptions, and how many rows one
    # transaction claims (FOR UPDATE SKIP LOCKED, so replicas share the work).
    scheduler_interval: float = Field(default=1.0, validation_alias="SCHEDULER_INTERVAL", gt=0)
    scheduler_batch: int = Field(default=1000, validation_alias="SCHEDULER_BATCH", ge=1, le=5000)

    # Dunning: after a failed payment, retry this many days after the first failure
    # ("1,3,5"), then cancel. A hard decline stops retrying; the subscription stays
    # past_due (features on) until `dunning_grace_days` after the first failure, so a card
    # update in the portal can still save it, and is canceled then.
    dunning_retry_days: str = Field(default="1,3,5", validation_alias="DUNNING_RETRY_DAYS")
    dunning_grace_days: int = Field(default=7, validation_alias="DUNNING_GRACE_DAYS", ge=0)
    # An invoice whose payment result has not arrived after this long is sent again (same
    # attempt, same idempotency key: checkout never charges it twice).
    payment_result_timeout: float = Field(
        default=3600.0, validation_alias="PAYMENT_RESULT_TIMEOUT", gt=0
    )
    trial_reminder_days: int = Field(default=3, validation_alias="TRIAL_REMINDER_DAYS", ge=0)

    # Invoices
    invoice_locale: str = Field(default="en_US", validation_alias="INVOICE_LOCALE")
    # A Unicode TTF for currency symbols outside Windows-1252 (optional; without one they
    # are written as ISO codes).
    invoice_font: str | None = Field(default=None, validation_alias="INVOICE_FONT")

    # Notifications (SMTP). Without SMTP_URL, notifications are recorded but not sent.
    smtp_url: str | None = Field(default=None, validation_alias="SMTP_URL")
    mail_from: str = Field(default="billing@bos.localhost", validation_alias="MAIL_FROM")
    notify_interval: float = Field(default=1.0, validation_alias="NOTIFY_INTERVAL", gt=0)
    public_url: str = Field(default="http://127.0.0.1:8080", validation_alias="PUBLIC_BASE_URL")

    # Checkout's internal API (card updates from the portal).
    checkout_url: str | None = Field(default=None, validation_alias="CHECKOUT_URL")

    # Test stacks only: lets /internal/clock move this process's clock.
    allow_clock_control: bool = Field(default=False, validation_alias="ALLOW_CLOCK_CONTROL")

    @property
    def retry_days(self) -> list[int]:
        return [int(x) for x in self.dunning_retry_days.split(",") if x.strip()]
