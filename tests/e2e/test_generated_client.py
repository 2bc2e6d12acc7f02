"""A client generated from the gateway's OpenAPI document with a standard generator
(openapi-python-client) runs the README's quickstart: list products, mint a session
token, create a checkout, pay it (the card from the simulator, as Stripe.js makes it),
read the subscription and the entitlements. Nothing but the generated code talks to BOS."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from types import ModuleType
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

PACKAGE = "bos_api_client"
ADMIN_TOKEN = os.environ.get("BOS_ADMIN_TOKEN", "bos-dev-admin")


@pytest.fixture(scope="module")
def client_package(gateway_url: str, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    work = tmp_path_factory.mktemp("generated")
    spec = httpx.get(f"{gateway_url}/openapi.json", timeout=10).json()
    ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    (work / "openapi.json").write_text(json.dumps(spec))
    # The currency enum lists codes in both cases: Literal types, not Enum classes. The
    # generated code is formatted with this venv's ruff (-I: not the package's types.py).
    (work / "config.yaml").write_text(
        f"post_hooks: ['{sys.executable} -I -m ruff format .']\nliteral_enums: true\n"
    )
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(work / "openapi.json"),
            "--output-path",
            str(work / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(work / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # Every schema became a model: a warning means the document lost something.
    assert "Unable to process schema" not in generated.stdout, generated.stdout
    sys.path.insert(0, str(work))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(work))


def api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def model(name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.parsed


def test_the_quickstart_through_a_generated_client(
    client_package: ModuleType, gateway_url: str
) -> None:
    client_module = importlib.import_module(f"{PACKAGE}.client")
    admin = client_module.AuthenticatedClient(base_url=gateway_url, token=ADMIN_TOKEN)
    org = ok(
        api("tokens.create_organization").sync_detailed(
            client=admin, body=model("CreateOrganization")(name=f"quickstart-{uuid.uuid4()}")
        ),
        201,
    )
    merchant = client_module.AuthenticatedClient(base_url=gateway_url, token=org.api_key.secret)

    # A product and its monthly price, then the product list.
    product = ok(
        api("catalog.create_product").sync_detailed(
            client=merchant, body=model("ProductCreate")(name="Pro", features=["exports"])
        ),
        201,
    )
    price = ok(
        api("catalog.create_price").sync_detailed(
            client=merchant,
            body=model("PriceCreateType0").from_dict(
                {
                    "product_id": product.id,
                    "amount": 2900,
                    "currency": "usd",
                    "type": "recurring",
                    "interval": "month",
                }
            ),
        ),
        201,
    )
    products = ok(api("catalog.list_products").sync_detailed(client=merchant))
    assert product.id in [p.id for p in products.data]

    # The merchant's backend mints a session token for its user.
    token = ok(
        api("tokens.create_session_token").sync_detailed(
            client=merchant, body=model("CreateSessionToken")(external_user_id="user_123")
        ),
        201,
    )
    browser = client_module.AuthenticatedClient(base_url=gateway_url, token=token.token)

    # The checkout, paid with a card the simulator makes as Stripe.js would.
    checkout = ok(
        api("checkout.create_checkout_session").sync_detailed(
            client=browser,
            body=model("CreateCheckoutSession")(
                price_id=price.id, customer=model("CustomerIn")(email="quickstart@example.com")
            ),
        ),
        201,
    )
    card = httpx.post(
        f"{os.environ['STRIPE_API_BASE']}/v1/payment_methods",
        data={"type": "card", "card[token]": "tok_visa"},
        headers={"Authorization": "Bearer pk_test_bos"},
        timeout=10,
    )
    assert card.status_code == 200, card.text
    confirmed = ok(
        api("checkout.confirm_checkout").sync_detailed(
            checkout.id,
            client=browser.with_headers({"Idempotency-Key": f"quickstart-{checkout.id}"}),
            body=model("Confirm")(payment_method=card.json()["id"]),
        )
    )
    assert confirmed.status in ("processing", "complete")
    deadline = time.monotonic() + 20
    while True:
        current = ok(
            api("checkout.get_checkout_session").sync_detailed(checkout.id, client=merchant)
        )
        if current.status == "complete" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert current.status == "complete"

    # The subscription and what it grants.
    subscription = ok(
        api("subscriptions.get_subscription").sync_detailed(
            current.subscription_id, client=merchant
        )
    )
    assert (subscription.status, subscription.amount) == ("active", 2900)
    entitlements = ok(
        api("subscriptions.get_entitlements").sync_detailed(
            client=merchant, external_user_id="user_123"
        )
    )
    assert entitlements.features == ["exports"]
