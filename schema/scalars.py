"""Scalars: ``GeoJSON`` (an RFC 7946 geometry object) and ``JSON``; money uses strawberry's ``Decimal``."""

from __future__ import annotations

import json
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON

__all__ = ["JSON", "SCALAR_MAP", "GeoJSON"]

GeoJSON = NewType("GeoJSON", object)
"""Python-side marker of the ``GeoJSON`` scalar (see ``SCALAR_MAP``)."""


def _serialize_geojson(value: Any) -> Any:
    # PostGIS hands GeoJSON over as text (ST_AsGeoJSON(geom, 6)); clients get the object.
    return json.loads(value) if isinstance(value, str) else value


SCALAR_MAP = {
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="An RFC 7946 GeoJSON geometry object: WGS84 (SRID 4326), [lon, lat], at most 6 decimals.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=_serialize_geojson,
        parse_value=lambda v: v,
    )
}
