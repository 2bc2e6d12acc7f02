from bos_common.bus import RetryPolicy, retry_queue_name


def test_retry_delays_follow_the_tiers_then_stay_on_the_last() -> None:
    policy = RetryPolicy(delays_ms=(100, 1000), max_attempts=5)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4)] == [100, 1000, 1000, 1000]


def test_retry_queue_names_carry_queue_and_delay() -> None:
    assert retry_queue_name("subscriptions.payments", 5000) == "subscriptions.payments.retry.5000"
