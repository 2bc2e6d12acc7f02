"""Runs last in this suite: every request the stack sent to Stripe so far in the run, as
the simulator recorded it, is one Stripe accepts at the pinned API version (parameters,
`Stripe-Version`, the documented rules)."""

from __future__ import annotations

import os

import pytest

from stripe_sim.testing import assert_run_sent_nothing_refused

pytestmark = pytest.mark.e2e


def test_the_run_sent_stripe_no_request_it_would_refuse() -> None:
    if not os.environ.get("STRIPE_API_BASE"):
        pytest.skip("no Stripe simulator (run `make test`)")
    assert_run_sent_nothing_refused(os.environ["STRIPE_API_BASE"])
