"""Scalars: ``GeoJSON`` (an RFC 7946 geometry object) and ``JSON``; money uses strawberry's ``Decimal``."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

__all__ = ["JSON", "SCALAR_MAP", "GeoJSON"]

GeoJSON = NewType("GeoJSON", object)
"""Python-side marker of the ``GeoJSON`` scalar (see ``SCALAR_MAP``)."""


def _serialize_geojson(value: Any) -> Any:
    # PostGIS hands GeoJSON over as text (ST_AsGeoJSON(geom, 6)); clients get the object.
    return json.loads(value) if isinstance(value, str) else value


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DECIMAL = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$|^[+-]?(?:NaN|Infinity|inf)$", re.I)


def _parse_date(value: Any) -> dt.date:
    """ISO-8601 calendar date, exactly ``YYYY-MM-DD`` (not the basic or week forms)."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError(f"Date must be YYYY-MM-DD, got {str(value)[:40]!r}")
    return dt.date.fromisoformat(value)


def _parse_decimal(value: Any) -> Decimal:
    """A decimal number as a string (or a JSON number): ASCII digits, optional fraction and exponent.
    Range and precision are checked by the field that takes it (e.g. money: 2 decimals)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError('Decimal must be a string such as "16000.00"')
    text = str(value)
    if len(text) > 100 or not _DECIMAL.match(text):
        raise ValueError(f'Decimal must be written like "16000.00", got {text[:40]!r}')
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f'Decimal must be written like "16000.00", got {text[:40]!r}') from None


SCALAR_MAP: dict[object, ScalarDefinition] = {
    dt.date: strawberry.scalar(
        name="Date", description="ISO-8601 calendar date, YYYY-MM-DD.", serialize=lambda d: d.isoformat(), parse_value=_parse_date
    ),
    Decimal: strawberry.scalar(
        name="Decimal",
        description='A decimal number as a string; money is yuan with 2 decimals ("16000.00").',
        serialize=str,
        parse_value=_parse_decimal,
    ),
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="An RFC 7946 GeoJSON geometry object: WGS84 (SRID 4326), [lon, lat], at most 6 decimals.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=_serialize_geojson,
        parse_value=lambda v: v,
    ),
}
