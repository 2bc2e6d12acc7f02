"""Field types whose JSON Schema states what their validation enforces, shared by the
services' request models, so the OpenAPI document (and a client or fuzzer generated
from it) knows every constraint the code checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Ge, GroupedMetadata, Gt, Le
from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

__all__ = [
    "PG_INTEGER_MAX",
    "JsonDecimal",
    "JsonInt",
    "JsonInteger",
    "Metadata",
    "MetadataKey",
    "MetadataValue",
    "NonBlank",
    "document_required",
    "non_blank_text",
]

# The largest value of a PostgreSQL `integer` column: counts stored in one are bounded by it
# (a larger one is a 422, not a failed INSERT).
PG_INTEGER_MAX = 2**31 - 1

# Text with at least one character that is not whitespace (Python's `\s`, what `strip`
# removes): the schema's way of saying "not empty once stripped".
NON_BLANK_PATTERN = r"\S"


def non_blank_text(max_length: int) -> StringConstraints:
    """Metadata for `Annotated[str, non_blank_text(n)]`: stored stripped; 1..n characters,
    not only whitespace."""
    return StringConstraints(
        strip_whitespace=True, min_length=1, max_length=max_length, pattern=NON_BLANK_PATTERN
    )


NonBlank = Annotated[str, non_blank_text(255)]

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=40)]
MetadataValue = Annotated[str, StringConstraints(max_length=500)]
# Stripe's limits: 50 keys of 1..40 characters, values up to 500.
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=50)]


def _json_integer(value: Any) -> Any:
    """JSON Schema's `integer` includes `5.0`; booleans and strings are not integers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class JsonInteger(GroupedMetadata):
    """Metadata for `Annotated[int, JsonInteger(ge=0, le=10)]`: an integer as JSON Schema
    defines it (`5` or `5.0`, never `"5"` nor `true`) within the bounds, which the schema
    states (they come before the validator so that they apply to the integer and show as
    `minimum`/`maximum`)."""

    ge: int | None = None
    gt: int | None = None
    le: int | None = None

    def __iter__(self) -> Iterator[object]:
        if self.ge is not None:
            yield Ge(self.ge)
        if self.gt is not None:
            yield Gt(self.gt)
        if self.le is not None:
            yield Le(self.le)
        yield BeforeValidator(_json_integer)


JsonInt = Annotated[int, JsonInteger()]


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    return value


@dataclass(frozen=True, slots=True)
class JsonDecimal(GroupedMetadata):
    """Metadata for `Annotated[Decimal, JsonDecimal(gt=0, le=100, decimal_places=2)]`: a JSON
    number (never a string) within the bounds, with at most `decimal_places` decimals; the
    schema says exactly that (pydantic's own Decimal schema also offers strings)."""

    gt: int
    le: int
    decimal_places: int

    def __iter__(self) -> Iterator[object]:
        yield from Field(gt=self.gt, le=self.le, decimal_places=self.decimal_places).metadata
        yield BeforeValidator(_json_number)
        yield WithJsonSchema(
            {
                "type": "number",
                "exclusiveMinimum": self.gt,
                "maximum": self.le,
                "multipleOf": 10**-self.decimal_places,
            }
        )


def document_required(*names: str) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` for fields the code requires itself (with a contract-specific
    error code) while the model keeps them optional: the schema lists them as required."""

    def extra(schema: dict[str, Any]) -> None:
        required = schema.setdefault("required", [])
        required.extend(name for name in names if name not in required)

    return extra
