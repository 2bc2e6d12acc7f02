"""Derive the request parameters the simulator accepts from the installed stripe SDK.

The SDK's services (``stripe/_*_service.py``) say which params TypedDict each
``method + path`` takes; the TypedDicts (``stripe.params``, generated from the OpenAPI spec of
the version the SDK sends) say which names, types and enum values each parameter has. Both are
walked here into ``src/stripe_sim/data/param_schemas.json`` for the routes the simulator serves;
``tests/test_param_schemas.py`` regenerates it and fails when it is stale. Enums Stripe does not
enforce (``data/open_enums.json``, vendored from the spec by ``extract_spec_schemas.py``) are
marked ``"open"``: any string passes.

    .venv/bin/python tools/stripe-sim/scripts/gen_param_schemas.py
"""

from __future__ import annotations

import ast
import re
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import stripe
import stripe.params
import typing_extensions
from stripe._api_version import _ApiVersion
from stripe._request_options import RequestOptions

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "stripe_sim" / "data" / "param_schemas.json"
OPEN_ENUMS = ROOT / "src" / "stripe_sim" / "data" / "open_enums.json"
SEGMENT = re.compile(r"[^\[\]]+|\[\]")
PLACEHOLDER = re.compile(r"\{[^}]*\}")
REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)

sys.path.insert(0, str(ROOT / "src"))


def template(path: str) -> str:
    """``/v1/accounts/{account}`` -> ``/v1/accounts/{}`` (placeholder names differ)."""
    return PLACEHOLDER.sub("{}", path)


def _params_class_name(annotation: ast.expr | None) -> str | None:
    """``"XParams"`` or ``Optional["XParams"]`` -> ``XParams``."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        return annotation.value
    if isinstance(annotation, ast.Subscript):
        return _params_class_name(annotation.slice)
    return None


def _request_target(node: ast.AST) -> tuple[str, str] | None:
    """``self._request("post", "/v1/x/{id}".format(...), ...)`` -> ``("POST", "/v1/x/{id}")``."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "_request"
        and len(node.args) >= 2
        and isinstance(node.args[0], ast.Constant)
    ):
        return None
    path_node = node.args[1]
    if isinstance(path_node, ast.Call) and isinstance(path_node.func, ast.Attribute):
        path_node = path_node.func.value
    if not isinstance(path_node, ast.Constant) or not isinstance(path_node.value, str):
        return None
    return str(node.args[0].value).upper(), path_node.value


def sdk_operations() -> dict[str, str]:
    """``"POST /v1/payment_intents/{}"`` -> params class name, from the SDK's v1 services."""
    package = Path(stripe.__file__).parent
    operations: dict[str, str] = {}
    for source in sorted(package.glob("_*_service.py")):
        tree = ast.parse(source.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            params = next((a for a in function.args.args if a.arg == "params"), None)
            class_name = _params_class_name(params.annotation if params else None)
            for node in ast.walk(function):
                target = _request_target(node)
                if target and class_name and target[1].startswith("/v1/"):
                    operations.setdefault(f"{target[0]} {template(target[1])}", class_name)
    return operations


def _is_literal(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Literal


def _own_hints(cls: type) -> dict[str, Any]:
    """The TypedDict's parameters with their types resolved, without the request options
    (``api_key``, ``stripe_account``, ...) it inherits: they travel as headers."""

    def holder() -> None: ...

    holder.__annotations__ = {
        k: v for k, v in cls.__annotations__.items() if k not in REQUEST_OPTION_KEYS
    }
    module = sys.modules[cls.__module__]
    return typing.get_type_hints(holder, vars(module), include_extras=True)


class Walker:
    """Turns TypedDicts into the JSON type language ``param_schema`` reads."""

    def __init__(self) -> None:
        self.types: dict[str, Any] = {}

    def typed_dict(self, cls: type) -> str:
        name = cls.__name__
        if name in self.types:
            return name
        self.types[name] = None  # reserve: recursive references
        hints = _own_hints(cls)
        fields: dict[str, Any] = {}
        required: list[str] = []
        for key, hint in sorted(hints.items()):
            origin = typing.get_origin(hint)
            if origin is typing.NotRequired or str(origin).endswith("NotRequired"):
                hint = typing.get_args(hint)[0]
            elif origin is typing.Required or str(origin).endswith(".Required"):
                hint = typing.get_args(hint)[0]
                required.append(key)
            else:
                if key in getattr(cls, "__required_keys__", ()):
                    required.append(key)
            fields[key] = self.type_of(hint)
        self.types[name] = {"fields": fields, "required": required}
        return name

    def type_of(self, hint: Any) -> Any:
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        if hint is int:
            return "integer"
        if hint is float:
            return "number"
        if hint is bool:
            return "boolean"
        if hint is str:
            return "string"
        if hint is typing.Any or hint is object:
            return "any"
        if typing_extensions.is_typeddict(hint):
            return {"object": self.typed_dict(hint)}
        if origin is typing.Literal:
            return {"enum": sorted(str(a) for a in args)}
        if origin in (list, typing.List):  # noqa: UP006
            return {"array": self.type_of(args[0])}
        if origin in (dict, typing.Dict):  # noqa: UP006
            return {"map": self.type_of(args[1])}
        if origin in (typing.Union, types.UnionType):
            return self.union(args)
        if getattr(hint, "__name__", "") == "UntypedStripeObject" or (
            origin is not None and getattr(origin, "__name__", "") == "UntypedStripeObject"
        ):
            return {"map": "string"}
        raise TypeError(f"unsupported parameter type {hint!r}")

    def union(self, args: Iterable[Any]) -> Any:
        """Enums are ``Literal[...]|str`` (the ``str`` keeps old SDKs working with new values;
        the API itself refuses them): the ``str`` is dropped next to a Literal."""
        members = list(args)
        literals = [
            a
            for a in members
            if typing.get_origin(a) is typing.Literal and typing.get_args(a) != ("",)
        ]
        if literals:
            members = [a for a in members if a is not str]
        emptyable = any(_is_literal(a) and typing.get_args(a) == ("",) for a in members)
        values: list[str] = []
        others: list[Any] = []
        for member in members:
            if _is_literal(member):
                values.extend(str(v) for v in typing.get_args(member) if v != "")
                continue
            converted = self.type_of(member)
            if converted == {"map": "string"} and {"map": "string"} in others:
                continue
            others.append(converted)
        if values:
            others.insert(0, {"enum": sorted(set(values))})
        result: Any = others[0] if len(others) == 1 else {"union": others}
        if emptyable:
            result = {"emptyable": result}
        return result


def _open_enum(types: dict[str, Any], node: Any, steps: list[str]) -> None:
    """Mark the enum at ``steps`` below ``node`` open (a path the SDK lacks is skipped)."""
    if isinstance(node, str):
        return
    if "emptyable" in node:
        _open_enum(types, node["emptyable"], steps)
    elif "union" in node:
        for member in node["union"]:
            _open_enum(types, member, steps)
    elif not steps:
        if "enum" in node:
            node["open"] = True
    elif "object" in node and steps[0] != "[]":
        field = types[node["object"]]["fields"].get(steps[0])
        if field is not None:
            _open_enum(types, field, steps[1:])
    elif "array" in node and steps[0] == "[]":
        _open_enum(types, node["array"], steps[1:])


def generate() -> dict[str, Any]:
    from stripe_sim.resources import ROUTES

    operations = sdk_operations()
    walker = Walker()
    routes: dict[str, str] = {}
    for route in ROUTES:
        key = f"{route.method} {template(route.path)}"
        class_name = operations.get(key)
        if class_name is None:
            raise LookupError(f"the stripe SDK has no operation for {key}")
        routes[key] = walker.typed_dict(getattr(stripe.params, class_name))
    open_enums = orjson.loads(OPEN_ENUMS.read_bytes())["routes"]
    for key, class_name in routes.items():
        for path in open_enums.get(key, []):
            root = {"object": class_name}
            _open_enum(walker.types, root, SEGMENT.findall(path))
    return {
        "api_version": _ApiVersion.CURRENT,
        "source": f"stripe {stripe.VERSION} (stripe.params, services)",
        "routes": dict(sorted(routes.items())),
        "types": dict(sorted(walker.types.items())),
    }


def render(schemas: dict[str, Any]) -> bytes:
    return orjson.dumps(schemas, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(render(generate()))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
