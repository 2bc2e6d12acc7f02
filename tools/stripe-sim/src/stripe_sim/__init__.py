"""stripe-sim: a stateful, offline stand-in for the Stripe API surface BOS uses."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
