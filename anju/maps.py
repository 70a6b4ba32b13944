"""Vector tile routes (issue #12), thin views over the layer registry (``resolvers.layers``).

- ``GET /tiles``: the catalog of the layers the caller may read (name, title, properties, filters, TileJSON link);
- ``GET /tiles/{layer}.json``: TileJSON 3.0.0 of one layer (MapLibre ``source: {type: "vector", url: …}``);
- ``GET /tiles/{layer}/{z}/{x}/{y}.mvt``: one layer's Mapbox Vector Tile;
- ``GET /tiles/{z}/{x}/{y}.mvt``: every readable layer (or ``?layers=a,b``) in one tile: one request per tile.

Query parameters filter as featureCollection's ``filter`` does (``areaCode``, ``siteId``, ``kinds``, ``zeroEmployment``,
``asOf``), plus ``coordSys`` (``GCJ02``/``BD09`` for AMap/Baidu basemaps). The viewer is ``ViewerMiddleware``'s; tiles
differ by viewer, so answers are ``Cache-Control: private`` with ``Vary: Authorization``, an ETag and gzip.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anju.responses import anju_error_response, data_response
from resolvers import layers as L
from resolvers.access import RECORDS, Viewer, scoped_sessionmaker
from resolvers.coords import CoordSys, from_wgs84
from resolvers.errors import AnjuError, InvalidInput

MVT = "application/vnd.mapbox-vector-tile"
COMMON_PARAMS = frozenset({"coordSys"})
"""Tile parameters besides the layers' filters."""


def today(request: Request) -> dt.date:
    """The default ``asOf``: today in the settings' zone (Asia/Shanghai)."""
    return dt.datetime.now(ZoneInfo(request.state.settings.timezone)).date()


def _zxy(request: Request) -> tuple[int, int, int]:
    p = request.path_params
    values = [p["z"], p["x"], p["y"]]
    if not all(v.isascii() and v.isdigit() and len(v) <= 8 for v in values):
        raise InvalidInput("z/x/y: expected non-negative integers (z 0..22, x and y below 2^z)", field="zxy")
    z, x, y = map(int, values)
    L.check_tile(z, x, y)
    return z, x, y


def _check_params(request: Request, accepted: set[str]) -> None:
    for name in request.query_params:
        if name not in accepted:
            raise InvalidInput(f"{name[:40]}: unknown parameter; expected some of {', '.join(sorted(accepted))}", field=name[:40])


def _headers(request: Request) -> dict[str, str]:
    return {"Cache-Control": f"private, max-age={request.state.settings.tiles.cache_seconds}", "Vary": "Authorization"}


async def _tile(request: Request, chosen: list[L.Layer], *, only_accepted: bool) -> Response:
    viewer: Viewer = request.state.viewer
    params = request.query_params
    z, x, y = _zxy(request)
    coord_sys = L.parse_coord_sys(params.get("coordSys"))
    pairs = []
    for layer in chosen:
        # in a multi-layer tile a filter applies to the layers that accept it
        own = {k: v for k, v in params.items() if k in layer.filters} if only_accepted else dict(params)
        pairs.append((layer, L.args_from_query(layer, {k: v for k, v in own.items() if k != "coordSys"}, today=today(request))))
    settings = request.state.settings
    data = await L.tile(
        scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS),
        pairs,
        viewer,
        z,
        x,
        y,
        coord_sys=coord_sys,
        max_features=settings.tiles.max_features_per_tile,
        cluster_below_zoom=settings.features.cluster_below_zoom,
    )
    if not data:
        return Response(status_code=204, headers=_headers(request))
    return data_response(request, data, MVT, _headers(request))


async def layer_tile(request: Request) -> Response:
    """``GET /tiles/{layer}/{z}/{x}/{y}.mvt``: 200 MVT, 204 empty, 400/403 JSON errors."""
    try:
        layer = L.layer_named(request.path_params["layer"])
        layer.check_viewer(request.state.viewer)
        _check_params(request, set(layer.filters - {"bbox"}) | COMMON_PARAMS)
        return await _tile(request, [layer], only_accepted=False)
    except AnjuError as exc:
        return anju_error_response(exc)


async def multi_tile(request: Request) -> Response:
    """``GET /tiles/{z}/{x}/{y}.mvt[?layers=a,b]``: every layer the viewer may read (or those named) in one tile."""
    viewer: Viewer = request.state.viewer
    try:
        names = request.query_params.get("layers")
        if names is None:
            chosen = [layer for layer in L.LAYERS.values() if not (layer.personal and not viewer.reads_households)]
        else:
            chosen = [L.layer_named(n.strip(), "layers") for n in names.split(",")]
            for layer in chosen:
                layer.check_viewer(viewer)
        accepted = {f for layer in chosen for f in layer.filters} - {"bbox"}
        _check_params(request, accepted | COMMON_PARAMS | {"layers"})
        return await _tile(request, list(dict.fromkeys(chosen)), only_accepted=True)
    except AnjuError as exc:
        return anju_error_response(exc)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _fields(layer: L.Layer, viewer: Viewer) -> dict[str, str]:
    kinds = {"string": "String", "integer": "Number", "number": "Number", "boolean": "Boolean"}
    out = {p.name: kinds[p.type] for p in layer.visible_properties(viewer)}
    if layer.clusters:
        out.update({"cluster": "Boolean", "cluster_id": "Number", "point_count": "Number", "point_count_abbreviated": "String"})
    return out


async def tilejson(request: Request) -> Response:
    """``GET /tiles/{layer}.json``: TileJSON 3.0.0; query parameters (filters, coordSys) are carried into ``tiles``.

    ``bounds`` is the layer's extent (WGS84), widened with ``coordSys`` to hold the shifted positions.
    """
    viewer: Viewer = request.state.viewer
    try:
        layer = L.layer_named(request.path_params["layer"])
        layer.check_viewer(viewer)
        _check_params(request, set(layer.filters - {"bbox"}) | COMMON_PARAMS)
        L.args_from_query(layer, {k: v for k, v in request.query_params.items() if k != "coordSys"}, today=today(request))
        coord_sys = L.parse_coord_sys(request.query_params.get("coordSys"))
    except AnjuError as exc:
        return anju_error_response(exc)
    async with scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS)() as s:
        box = (await s.execute(L.extent_select(layer))).one()
    bounds = [round(v, 6) for v in box] if None not in box else [-180.0, -85.0511, 180.0, 85.0511]
    if None not in box and coord_sys is not CoordSys.WGS84:
        # the tiles are drawn in GCJ-02/BD-09: bounds must hold the shifted positions (MapLibre asks for no tile outside)
        (x0, y0), (x1, y1) = from_wgs84(box[0], box[1], coord_sys), from_wgs84(box[2], box[3], coord_sys)
        m = L.SHIFT_MARGIN_DEGREES
        bounds = [
            round(max(-180.0, min(box[0], x0) - m), 6),
            round(max(-85.0511, min(box[1], y0) - m), 6),
            round(min(180.0, max(box[2], x1) + m), 6),
            round(min(85.0511, max(box[3], y1) + m), 6),
        ]
    query = urlencode(list(request.query_params.multi_items()))
    url = f"{_base(request)}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt" + (f"?{query}" if query else "")
    cluster_below = request.state.settings.features.cluster_below_zoom
    doc = {
        "tilejson": "3.0.0",
        "name": layer.name,
        "description": layer.description,
        "attribution": "Anju (安居)",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": 22,
        "bounds": bounds,
        "center": [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6), 10],
        "vector_layers": [
            {
                "id": layer.name,
                "description": layer.title
                + (f"; clustered below zoom {cluster_below} (cluster, point_count)" if layer.clusters else ""),
                "minzoom": 0,
                "maxzoom": 22,
                "fields": _fields(layer, viewer),
            }
        ],
    }
    return data_response(request, json.dumps(doc, ensure_ascii=False).encode(), "application/json", _headers(request))


async def catalog(request: Request) -> Response:
    """``GET /tiles``: the layers the caller may read: TileJSON and tile URLs, properties (with enum values), filters."""
    viewer: Viewer = request.state.viewer
    base = _base(request)
    cluster_below = request.state.settings.features.cluster_below_zoom
    items = [
        {
            "name": layer.name,
            "title": layer.title,
            "description": layer.description,
            "geometryType": layer.geometry_type,
            "tilejson": f"{base}/tiles/{layer.name}.json",
            "tiles": f"{base}/tiles/{layer.name}/{{z}}/{{x}}/{{y}}.mvt",
            "properties": _fields(layer, viewer),
            "values": {p.name: list(p.values) for p in layer.visible_properties(viewer) if p.values},
            "filters": [f for f in L.FILTERS if f in layer.filters and f != "bbox"],
            "asOf": layer.asof_rule or None,
            "clusterBelowZoom": cluster_below if layer.clusters else None,
        }
        for layer in L.LAYERS.values()
        if not (layer.personal and not viewer.reads_households)
    ]
    doc = {"layers": items, "tiles": f"{base}/tiles/{{z}}/{{x}}/{{y}}.mvt", "coordSys": ["WGS84", "GCJ02", "BD09"]}
    return data_response(request, json.dumps(doc, ensure_ascii=False).encode(), "application/json", _headers(request))


ROUTES = [
    Route("/tiles", catalog),
    Route("/tiles/{layer}.json", tilejson),
    Route("/tiles/{z}/{x}/{y}.mvt", multi_tile),
    Route("/tiles/{layer}/{z}/{x}/{y}.mvt", layer_tile),
]
"""The tile routes, mounted by ``anju.app.create_app``."""
