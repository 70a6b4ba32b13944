"""Scalars: ``GeoJSON`` (an RFC 7946 geometry object) and ``JSON``; money uses strawberry's ``Decimal``."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode, VariableNode
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "GeoJSON", "ScalarInputError"]

GeoJSON = NewType("GeoJSON", object)
"""Python-side marker of the ``GeoJSON`` scalar (see ``SCALAR_MAP``)."""


def _serialize_geojson(value: Any) -> Any:
    # PostGIS hands GeoJSON over as text (ST_AsGeoJSON(geom, 6)); clients get the object.
    return json.loads(value) if isinstance(value, str) else value


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^[+-]?(?:NaN|Infinity|inf)$", re.I)


class ScalarInputError(ValueError):
    """A scalar's parser refused the value; the message says what the scalar accepts."""


def _parse_date(value: Any) -> dt.date:
    """ISO-8601 calendar date, exactly ``YYYY-MM-DD`` (not the basic or week forms)."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise ScalarInputError(f"Date must be YYYY-MM-DD, got {str(value)[:40]!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:  # 2024-13-45: the form is right, the date does not exist
        raise ScalarInputError(f"Date must be a calendar date YYYY-MM-DD, got {value!r} ({exc})") from None


def _parse_decimal(value: Any) -> Decimal:
    """A decimal number, read exactly: a string (``"16000.00"``), or a JSON integer.

    A JSON number with a fraction or exponent reaches the server as a binary float, which holds a
    nearby value, not the one sent (``0.10000000000000001`` arrives as ``0.1``): it is refused,
    never rounded. Range and precision are checked by the field that takes it (money: 2 decimals).
    """
    if isinstance(value, Decimal):  # from a literal (see _decimal_literal) or a Python caller
        return value
    if isinstance(value, float):
        raise ScalarInputError(
            f'Decimal must be sent as a string such as "16000.00", not as the JSON number {value!r}: '
            "a number with a fraction is read as a binary float and may not be the value sent"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ScalarInputError('Decimal must be a string such as "16000.00"')
    text = str(value)
    if len(text) > 100 or not _DECIMAL.match(text):
        raise ScalarInputError(f'Decimal must be written like "16000.00", got {text[:40]!r}')
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ScalarInputError(f'Decimal must be written like "16000.00", got {text[:40]!r}') from None


def _decimal_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Decimal:
    """A Decimal typed in the document.

    From the literal's own text (``amount: 0.10`` is exact there; it never passes through a float).
    """
    if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
        return _parse_decimal(node.value)
    if isinstance(node, VariableNode):  # graphql-core resolves variables before, kept for safety
        return _parse_decimal((variables or {}).get(node.name.value))
    raise ScalarInputError('Decimal must be a string such as "16000.00"')


SCALAR_MAP: dict[object, ScalarDefinition] = {
    dt.date: strawberry.scalar(
        name="Date", description="ISO-8601 calendar date, YYYY-MM-DD.", serialize=lambda d: d.isoformat(), parse_value=_parse_date
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description='A decimal number as a string ("16000.00"; a JSON integer is accepted too, a JSON number '
        "with a fraction is refused: it would arrive as a binary float); money is yuan with 2 decimals.",
        serialize=str,
        parse_value=_parse_decimal,
        parse_literal=_decimal_literal,
    ),
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="An RFC 7946 GeoJSON geometry object: WGS84 (SRID 4326), [lon, lat], at most 6 decimals.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=_serialize_geojson,
        parse_value=lambda v: v,
    ),
}
