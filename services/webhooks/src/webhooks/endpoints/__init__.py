"""Webhooks to merchants (the service's second domain, beside Stripe intake): merchants
register endpoints, BOS's domain events become public, versioned events
(`catalogue`), and a worker posts them signed per the Standard Webhooks specification."""
