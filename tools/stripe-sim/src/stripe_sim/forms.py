"""Stripe's form encoding: ``a[b][c]=1``, ``items[0][x]=1``, ``expand[]=a`` into nested values.

``Params`` wraps the decoded mapping with typed accessors that raise Stripe's own
parameter errors (the names and types a route accepts are checked before, ``param_schema``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from . import errors

_KEY_RE = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _split_key(key: str) -> list[str]:
    """``a[b][0]`` -> ``["a", "b", "0"]``; ``expand[]`` -> ``["expand", ""]``."""
    if "[" not in key:
        return [key]
    parts: list[str] = []
    for match in _KEY_RE.finditer(key):
        bare, bracketed = match.group(1), match.group(2)
        parts.append(bare if bare is not None else bracketed)
    return parts


def _insert(root: dict[str, Any], parts: list[str], value: str) -> None:
    node: dict[str, Any] = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":  # "a[]" appends
            part = f"\x00{len(node)}"
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _listify(value: Any) -> Any:
    """Turn dicts whose keys are all indices (``0``, ``1`` or appended) into lists."""
    if not isinstance(value, dict):
        return value
    for k, v in value.items():
        value[k] = _listify(v)
    if value and all(_is_index(k) for k in value):
        return [value[k] for k in sorted(value, key=_index_of)]
    return value


def _is_index(key: str) -> bool:
    return key.isdigit() or key.startswith("\x00")


def _index_of(key: str) -> int:
    return int(key[1:]) if key.startswith("\x00") else int(key)


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        _insert(root, _split_key(key), value)
    for k, v in root.items():
        root[k] = _listify(v)
    return root


def decode(body: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Decode a form/query string; also return the raw pairs (for idempotency hashing)."""
    pairs = parse_qsl(body, keep_blank_values=True)
    return decode_pairs(pairs), pairs


def to_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise errors.invalid_request(f"Invalid boolean: {value}", param=param)


def to_int(value: Any, param: str) -> int:
    if isinstance(value, bool):
        raise errors.invalid_integer(param, value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise errors.invalid_integer(param, value) from None


class Params:
    """Typed read access to decoded request parameters."""

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def string(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise errors.missing_param(key)
            return default if value is None else None
        if not isinstance(value, str):
            raise errors.invalid_request(f"Invalid string: {value!r}", param=key)
        return value

    def req_string(self, key: str) -> str:
        value = self.string(key, required=True)
        assert value is not None
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise errors.missing_param(key)
            return None
        return to_int(value, key)

    def req_integer(self, key: str) -> int:
        value = self.integer(key, required=True)
        assert value is not None
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        return to_bool(value, key)

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise errors.invalid_request(f"Invalid hash: {value!r}", param=key)
        return value

    def array(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [value]
        raise errors.invalid_request(f"Invalid array: {value!r}", param=key)


def apply_metadata(current: dict[str, str], update: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe metadata semantics: merge keys, ``""`` unsets a key, ``metadata=""`` clears all."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise errors.invalid_request(f"Invalid hash: {update!r}", param=param)
    merged = dict(current)
    for key, value in update.items():
        if value == "" or value is None:
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    if len(merged) > 50:
        raise errors.invalid_request(
            "You can have at most 50 metadata keys.", param=param, code="parameter_invalid"
        )
    return merged


def nullable_str(value: Any) -> str | None:
    """``""`` unsets a field (Stripe semantics)."""
    if value is None or value == "":
        return None
    return str(value)
