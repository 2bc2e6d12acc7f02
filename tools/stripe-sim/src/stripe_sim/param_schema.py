"""Request parameters checked as Stripe checks them, nested ones included.

What each route accepts comes from ``data/param_schemas.json``, derived from the stripe SDK's
typed params (``scripts/gen_param_schemas.py``; a test keeps it in step with the installed SDK).
Each route's schema is compiled once into nested check functions, so a request costs one walk
over the parameters it sent.

Type language of the JSON: ``"string" | "integer" | "number" | "boolean" | "any"``,
``{"enum": [...]}`` (``"open": true``: Stripe does not enforce it, any string passes),
``{"array": T}``, ``{"map": T}`` (free keys, e.g. ``metadata``),
``{"object": "<TypedDict name>"}``, ``{"union": [T, ...]}``, ``{"emptyable": T}`` (``""``
unsets it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import orjson

from . import errors

#: ``check(value, param)`` raises a Stripe ``invalid_request_error`` or returns
Check = Callable[[Any, str], None]

_INTEGER = re.compile(r"-?\d+\Z")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)\Z")
_BOOLEANS = frozenset({"true", "false"})
#: Stripe.js sends ``client_secret`` with a publishable key; Stripe's OpenAPI spec lists it
#: on the routes Stripe.js calls, the server SDK's types leave it out.
CLIENT_SIDE_PARAMS: Mapping[str, Any] = {"client_secret": "string"}


@cache
def schemas() -> dict[str, Any]:
    """The derived parameter schemas (``api_version``, ``routes``, ``types``)."""
    raw = resources.files("stripe_sim").joinpath("data/param_schemas.json").read_bytes()
    loaded: dict[str, Any] = orjson.loads(raw)
    return loaded


def route_key(method: str, path: str) -> str:
    """``POST /v1/accounts/{account}`` -> ``POST /v1/accounts/{}``."""
    return f"{method} {re.sub(r'{[^}]*}', '{}', path)}"


def _sub(param: str, key: str) -> str:
    return f"{param}[{key}]" if param else key


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _empty(param: str) -> errors.StripeError:
    return errors.parameter_error(
        f"You passed an empty string for '{param}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{param}' cannot be unset. You should remove '{param}' "
        "from your request or supply a non-empty value.",
        param=param,
        code="parameter_invalid_empty",
    )


def _invalid(kind: str, value: Any, param: str) -> errors.StripeError:
    return errors.parameter_error(f"Invalid {kind}: {_shown(value)}", param=param)


def _check_string(value: Any, param: str) -> None:
    if not isinstance(value, str):
        raise _invalid("string", value, param)
    if value == "":
        raise _empty(param)


def _check_integer(value: Any, param: str) -> None:
    if isinstance(value, str) and _INTEGER.match(value):
        return
    if value == "":
        raise _empty(param)
    raise errors.invalid_integer(param, _shown(value))


def _check_number(value: Any, param: str) -> None:
    if isinstance(value, str) and _NUMBER.match(value):
        return
    if value == "":
        raise _empty(param)
    raise _invalid("decimal", value, param)


def _check_boolean(value: Any, param: str) -> None:
    if value in _BOOLEANS:
        return
    if value == "":
        raise _empty(param)
    raise _invalid("boolean", value, param)


def _check_any(value: Any, param: str) -> None:
    return None


def _one_of(values: list[str]) -> str:
    if len(values) == 1:
        return values[0]
    return f"{', '.join(values[:-1])}{',' if len(values) > 2 else ''} or {values[-1]}"


def _enum(values: list[str]) -> Check:
    allowed = frozenset(values)
    listed = _one_of(values)

    def check(value: Any, param: str) -> None:
        if isinstance(value, str) and value in allowed:
            return
        if value == "":
            raise _empty(param)
        raise errors.parameter_error(f"Invalid {param}: must be one of {listed}", param=param)

    return check


def _array(item: Check) -> Check:
    def check(value: Any, param: str) -> None:
        if not isinstance(value, list):
            if value == "":
                raise _empty(param)
            raise _invalid("array", value, param)
        for index, element in enumerate(value):
            item(element, f"{param}[{index}]")

    return check


def _map(item: Check) -> Check:
    def check(value: Any, param: str) -> None:
        if isinstance(value, list):  # keys 0, 1, ... were decoded as a list
            value = {str(index): element for index, element in enumerate(value)}
        if not isinstance(value, dict):
            if value == "":
                raise _empty(param)
            raise _invalid("hash", value, param)
        for key, element in value.items():
            item(element, _sub(param, key))

    return check


def _emptyable(inner: Check) -> Check:
    def check(value: Any, param: str) -> None:
        if value != "":
            inner(value, param)

    return check


def _union(members: list[tuple[Any, Check]]) -> Check:
    """The member whose shape fits the value (hash, array or scalar) decides."""
    by_shape: dict[type, Check] = {}
    scalars: list[Check] = []
    for spec, member in members:
        if isinstance(spec, dict) and ("object" in spec or "map" in spec):
            by_shape.setdefault(dict, member)
        elif isinstance(spec, dict) and "array" in spec:
            by_shape.setdefault(list, member)
        else:
            scalars.append(member)

    def check(value: Any, param: str) -> None:
        member = by_shape.get(type(value))
        if member is not None:
            member(value, param)
            return
        first_error: errors.StripeError | None = None
        for scalar in scalars:
            try:
                scalar(value, param)
                return
            except errors.StripeError as exc:
                first_error = first_error or exc
        if first_error is not None:
            raise first_error
        raise _invalid("value", value, param)

    return check


class Compiler:
    """Compiles the JSON type language into checks; one check per TypedDict, shared."""

    def __init__(self, types: Mapping[str, Any]) -> None:
        self.types = types
        self.objects: dict[str, Check] = {}

    def compile(self, spec: Any) -> Check:
        if isinstance(spec, str):
            return _SCALARS[spec]
        if "object" in spec:
            return self.object(spec["object"])
        if "enum" in spec:
            return _check_string if spec.get("open") else _enum(spec["enum"])
        if "array" in spec:
            return _array(self.compile(spec["array"]))
        if "map" in spec:  # a key set to "" is unset (metadata)
            return _map(_emptyable(self.compile(spec["map"])))
        if "emptyable" in spec:
            return _emptyable(self.compile(spec["emptyable"]))
        if "union" in spec:
            return _union([(member, self.compile(member)) for member in spec["union"]])
        raise ValueError(f"unknown parameter type {spec!r}")

    def object(self, name: str, extra: Mapping[str, Any] | None = None) -> Check:
        cache_key = name if not extra else f"{name}+{','.join(sorted(extra))}"
        compiled = self.objects.get(cache_key)
        if compiled is not None:
            return compiled
        fields: dict[str, Check] = {}
        # the entry goes in first, so recursive types find it
        self.objects[cache_key] = lambda value, param: check(value, param)
        definition = self.types[name]
        for key, spec in {**definition["fields"], **(extra or {})}.items():
            fields[key] = self.compile(spec)
        required = tuple(definition["required"])

        def check(value: Any, param: str) -> None:
            if not isinstance(value, dict):
                if value == "":
                    raise _empty(param)
                raise _invalid("hash", value, param)
            for key, element in value.items():
                field = fields.get(key)
                if field is None:
                    raise errors.unknown_param(_sub(param, key))
                field(element, _sub(param, key))
            for key in required:
                if key not in value:
                    raise errors.missing_param(_sub(param, key))

        self.objects[cache_key] = check
        return check


_SCALARS: dict[str, Check] = {
    "string": _check_string,
    "integer": _check_integer,
    "number": _check_number,
    "boolean": _check_boolean,
    "any": _check_any,
}


@cache
def _compiler() -> Compiler:
    return Compiler(schemas()["types"])


def validator(method: str, path: str, *, publishable: bool = False) -> Callable[[Any], None]:
    """The check of a route's whole parameter mapping (raises ``LookupError`` for a route the
    SDK does not describe, so every simulated route is covered)."""
    class_name = schemas()["routes"].get(route_key(method, path))
    if class_name is None:
        raise LookupError(
            f"no derived parameters for {method} {path}: run "
            "tools/stripe-sim/scripts/gen_param_schemas.py"
        )
    check = _compiler().object(class_name, CLIENT_SIDE_PARAMS if publishable else None)

    def validate(params: Any) -> None:
        check(params, "")

    return validate


def api_version() -> str:
    """The API version the parameters were derived for (the SDK's)."""
    version: str = schemas()["api_version"]
    return version
