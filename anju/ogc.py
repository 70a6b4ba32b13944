"""OGC API Features at ``/ogc`` (issue #12): a collection per layer of the registry (``resolvers.layers``).

Part 1 Core (landing page, conformance, OpenAPI 3.0, collections, items with ``bbox``, ``datetime``, ``limit``,
keyset ``next`` links carrying every parameter, ``numberMatched``, single features, GeoJSON), Part 2 CRS
(``crs`` / ``bbox-crs``: CRS84, EPSG:4326 and EPSG:4490 CGCS2000, the latter two in lat/lon order) and Part 3
(queryables, properties as query parameters, CQL2 basic text ``filter``). QGIS: add a "WFS / OGC API Features"
connection to ``…/ogc`` with a bearer-token authentication (README).

The landing page, conformance and the API definition hold no data and answer without a token; every other
route has ``ViewerMiddleware``'s viewer, and its SQL runs in the viewer's scoped transactions like GraphQL's:
same rows (row-level security), same properties (null where the role may not see them; not filterable).
``datetime`` is the layers' ``asOf`` (one date; on layers without a date it only has to be a valid date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anju.maps import today
from anju.responses import anju_error_response, data_response, error_response
from resolvers import layers as L
from resolvers.access import RECORDS, Viewer, scoped_sessionmaker
from resolvers.cql2 import compile_equality, compile_filter
from resolvers.errors import AnjuError, InvalidInput, NotFound
from resolvers.query import area_code_prefix, parse_id

GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
CRS = {
    CRS84: False,
    "http://www.opengis.net/def/crs/EPSG/0/4326": True,
    "http://www.opengis.net/def/crs/EPSG/0/4490": True,
}
"""Supported CRS URIs → whether coordinates are in lat/lon order. CGCS2000 (EPSG:4490) agrees with WGS84 to a few
centimetres: the stored WGS84 coordinates are served as they are."""
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
ITEM_PARAMS = frozenset(
    {"limit", "bbox", "bbox-crs", "crs", "datetime", "filter", "filter-lang", "filter-crs", "after", "f", *L.FILTERS}
)
"""Items parameters besides the layer's queryables (as equality filters)."""
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _json(request: Request, doc: Any, media_type: str = "application/json", headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, ensure_ascii=False).encode()
    return data_response(
        request, body, media_type, {"Cache-Control": "private, max-age=60", "Vary": "Authorization", **(headers or {})}
    )


def _error(exc: AnjuError) -> Response:
    return anju_error_response(exc, ogc=True)


def _check_f(request: Request) -> None:
    f = request.query_params.get("f")
    if f is not None and f not in ("json", "geojson", "application/json", GEOJSON):
        raise InvalidInput(f"f: {f[:20]!r} is not offered; only json", field="f")


async def landing(request: Request) -> Response:
    """``GET /ogc``: title and links to the API definition, conformance and collections (no token needed)."""
    root = _root(request)
    return _json(
        request,
        {
            "title": "Anju (安居) — relocation sites, facilities, households, admin areas",
            "description": "OGC API Features over Anju's map layers. Every route below the landing page, conformance "
            "and API definition needs 'Authorization: Bearer <token>'.",
            "links": [
                {"rel": "self", "type": "application/json", "title": "this document", "href": f"{root}/"},
                {"rel": "service-desc", "type": OPENAPI, "title": "the API definition (OpenAPI 3.0)", "href": f"{root}/api"},
                {"rel": "conformance", "type": "application/json", "title": "conformance classes", "href": f"{root}/conformance"},
                {"rel": "data", "type": "application/json", "title": "the collections", "href": f"{root}/collections"},
            ],
        },
    )


async def conformance(request: Request) -> Response:
    """``GET /ogc/conformance``: the conformance classes implemented."""
    return _json(request, {"conformsTo": CONFORMANCE})


def _visible_layers(viewer: Viewer) -> list[L.Layer]:
    return [layer for layer in L.LAYERS.values() if not (layer.personal and not viewer.reads_households)]


async def _collection_doc(request: Request, layer: L.Layer) -> dict[str, Any]:
    viewer: Viewer = request.state.viewer
    root = _root(request)
    async with scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS)() as s:
        box = (await s.execute(L.extent_select(layer))).one()
    bbox = [round(v, 6) for v in box] if None not in box else [-180.0, -90.0, 180.0, 90.0]
    href = f"{root}/collections/{layer.name}"
    return {
        "id": layer.name,
        "title": layer.title,
        "description": layer.description + (f" datetime: {layer.asof_rule}." if layer.asof_rule else ""),
        "itemType": "feature",
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}},
        "crs": list(CRS),
        "storageCrs": CRS84,
        "links": [
            {"rel": "self", "type": "application/json", "title": layer.title, "href": href},
            {"rel": "items", "type": GEOJSON, "title": f"{layer.title}: features", "href": f"{href}/items"},
            {
                "rel": QUERYABLES_REL,
                "type": "application/schema+json",
                "title": "queryables",
                "href": f"{href}/queryables",
            },
        ],
    }


async def collections(request: Request) -> Response:
    """``GET /ogc/collections``: one collection per layer the viewer may read."""
    try:
        _check_f(request)
    except AnjuError as exc:
        return _error(exc)
    root = _root(request)
    docs = [await _collection_doc(request, layer) for layer in _visible_layers(request.state.viewer)]
    return _json(
        request,
        {
            "links": [{"rel": "self", "type": "application/json", "title": "collections", "href": f"{root}/collections"}],
            "collections": docs,
            "crs": list(CRS),
        },
    )


def _layer(request: Request) -> L.Layer:
    name = request.path_params["collection"]
    layer = L.LAYERS.get(name)
    if layer is None:
        raise NotFound(f"collection: no collection {name[:40]!r}; collections are {', '.join(L.LAYERS)}", field="collection")
    layer.check_viewer(request.state.viewer)
    return layer


async def collection(request: Request) -> Response:
    """``GET /ogc/collections/{collection}``: one collection (404 unknown, 403 households for partners)."""
    try:
        _check_f(request)
        layer = _layer(request)
    except AnjuError as exc:
        return _error(exc)
    return _json(request, await _collection_doc(request, layer))


async def queryables(request: Request) -> Response:
    """``GET /ogc/collections/{collection}/queryables``: JSON Schema of the properties the viewer may filter on."""
    try:
        layer = _layer(request)
    except AnjuError as exc:
        return _error(exc)
    doc = L.queryables(layer, request.state.viewer, f"{_root(request)}/collections/{layer.name}/queryables")
    return _json(request, doc, "application/schema+json")


def _crs(request: Request, name: str) -> tuple[str, bool]:
    uri = request.query_params.get(name, CRS84)
    if uri not in CRS:
        raise InvalidInput(f"{name}: {uri[:80]!r} is not one of {', '.join(CRS)}", field=name)
    return uri, CRS[uri]


def _datetime(value: str) -> dt.date:
    if "/" in value or value.startswith(".."):
        raise InvalidInput(
            "datetime: give one date (YYYY-MM-DD or an RFC 3339 date-time); intervals are not offered", field="datetime"
        )
    return L.parse_date(value, "datetime")


def _key(layer: L.Layer, value: str, name: str) -> int | str:
    if layer.numeric_ids:
        key = parse_id(value)
        if key is None:
            raise InvalidInput(f"{name}: {value[:40]!r} is not a feature id of {layer.name}", field=name)
        return key
    area_code_prefix(value, name)
    return value


async def items(request: Request) -> Response:
    """``GET /ogc/collections/{collection}/items``: a page of features (application/geo+json)."""
    viewer: Viewer = request.state.viewer
    try:
        _check_f(request)
        layer = _layer(request)
        params = request.query_params
        props = {p.name for p in layer.properties}
        for name in params:
            if name not in ITEM_PARAMS and name not in props:
                accepted = sorted(ITEM_PARAMS | {p.name for p in layer.visible_properties(viewer)})
                raise InvalidInput(f"{name[:40]}: unknown parameter; expected some of {', '.join(accepted)}", field=name[:40])
        raw_limit = params.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise InvalidInput(f"limit: {raw_limit[:20]!r} outside 1..{MAX_LIMIT}", field="limit")
        limit = int(raw_limit)
        crs_uri, lat_lon = _crs(request, "crs")
        _, bbox_lat_lon = _crs(request, "bbox-crs")
        if params.get("filter-lang", "cql2-text") != "cql2-text":
            raise InvalidInput("filter-lang: only cql2-text is offered", field="filter-lang")
        filters = {k: v for k, v in params.items() if k in L.FILTERS and k != "bbox"}
        date = params.get("datetime")
        if date is not None:
            day = _datetime(date)
            if "asOf" in layer.filters:
                filters["asOf"] = day.isoformat()
        args = L.args_from_query(layer, filters, today=today(request))
        if params.get("bbox") is not None:
            args = dataclasses.replace(args, bbox=L.bbox_arg(params["bbox"], lat_lon=bbox_lat_lon))
        conds = [
            compile_equality(layer, name, value, viewer, args.as_of)
            for name, value in params.items()
            if name in props and name not in L.FILTERS
        ]
        if params.get("filter") is not None:
            conds.append(compile_filter(layer, params["filter"], viewer, args.as_of))
        args = L.with_where(args, *conds)
        after = _key(layer, params["after"], "after") if params.get("after") is not None else None
    except AnjuError as exc:
        return _error(exc)
    root = _root(request)
    base = f"{root}/collections/{layer.name}/items"
    kept = [(k, v) for k, v in params.multi_items() if k != "after"]
    self_href = base + (f"?{urlencode(params.multi_items())}" if params else "")
    next_prefix = base + "?" + urlencode([*kept, ("after", "")])
    links = [
        {"rel": "self", "type": GEOJSON, "title": "this page", "href": self_href},
        {"rel": "collection", "type": "application/json", "title": layer.title, "href": f"{root}/collections/{layer.name}"},
    ]
    q = L.items_select(layer, args, viewer, limit=limit, after=after, lat_lon=lat_lon, links=links, next_href_prefix=next_prefix)
    async with scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS)() as s:
        text, _ = (await s.execute(q)).one()
    # the self link as an HTTP Link header as well (RFC 8288), for clients that read media types there
    queryables_href = f"{root}/collections/{layer.name}/queryables"
    link = (
        f'<{self_href}>; rel="self"; type="{GEOJSON}", '
        f'<{queryables_href}>; rel="{QUERYABLES_REL}"; type="application/schema+json"'
    )
    return data_response(request, text.encode(), GEOJSON, {**_headers(crs_uri), "Link": link})


def _headers(crs_uri: str) -> dict[str, str]:
    return {"Cache-Control": "private, max-age=60", "Vary": "Authorization", "Content-Crs": f"<{crs_uri}>"}


async def item(request: Request) -> Response:
    """``GET /ogc/collections/{collection}/items/{featureId}``: one feature; 404 when absent or out of the viewer's scope."""
    viewer: Viewer = request.state.viewer
    try:
        _check_f(request)
        layer = _layer(request)
        for name in request.query_params:
            if name not in ("crs", "f"):
                raise InvalidInput(f"{name[:40]}: unknown parameter; expected crs or f", field=name[:40])
        crs_uri, lat_lon = _crs(request, "crs")
        key = _key(layer, request.path_params["feature"], "featureId")
    except AnjuError as exc:
        return _error(exc)
    root = _root(request)
    href = f"{root}/collections/{layer.name}/items/{key}"
    links = [
        {"rel": "self", "type": GEOJSON, "title": "this feature", "href": href},
        {"rel": "collection", "type": "application/json", "title": layer.title, "href": f"{root}/collections/{layer.name}"},
    ]
    args = L.layer_args(layer, today=today(request))
    async with scoped_sessionmaker(request.state.sessionmaker, viewer, RECORDS)() as s:
        text = await s.scalar(L.item_select(layer, args, viewer, key, lat_lon=lat_lon, links=links))
    if text is None:
        return error_response(f"featureId: no feature {key} in {layer.name}", 404, "NOT_FOUND", field="featureId", ogc=True)
    return data_response(request, text.encode(), GEOJSON, _headers(crs_uri))


# --------------------------------------------------------------------------- the API definition


def _param(name: str, description: str, schema: dict[str, Any], *, style: str = "form", explode: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "style": style,
        "explode": explode,
    }


COMMON = {
    "limit": _param(
        "limit",
        f"At most this many features (default {DEFAULT_LIMIT}).",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    "bbox": _param(
        "bbox",
        "Only features intersecting minLon,minLat,maxLon,maxLat (in bbox-crs; lat/lon order for EPSG:4326/4490).",
        {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
    ),
    "bbox-crs": _param("bbox-crs", "CRS of bbox.", {"type": "string", "format": "uri", "enum": list(CRS), "default": CRS84}),
    "crs": _param(
        "crs", "CRS of the answer's coordinates.", {"type": "string", "format": "uri", "enum": list(CRS), "default": CRS84}
    ),
    "datetime": _param("datetime", "The layer's date (asOf): one date, YYYY-MM-DD or an RFC 3339 date-time.", {"type": "string"}),
    "filter": _param("filter", "CQL2 basic text filter on the layer's queryables.", {"type": "string"}),
    "filter-lang": _param("filter-lang", "Only cql2-text.", {"type": "string", "enum": ["cql2-text"], "default": "cql2-text"}),
    "after": _param("after", "Keyset: the last feature id of the previous page (use the next link).", {"type": "string"}),
    "f": _param("f", "Format: json.", {"type": "string", "enum": ["json"]}),
}
FILTER_SCHEMAS = {
    "areaCode": {"type": "string", "pattern": "^[0-9]{6}([0-9]{3}([0-9]{3})?)?$"},
    "siteId": {"type": "integer"},
    "kinds": {"type": "string"},
    "zeroEmployment": {"type": "boolean"},
}
FILTER_TEXTS = {
    "areaCode": "The area and everything below it (admin code, or the point inside its polygon).",
    "siteId": "Features of this relocation site.",
    "kinds": "Comma-separated facility kinds (SCHOOL,CLINIC).",
    "zeroEmployment": "Households zero-employment on datetime (true) or not (false).",
}


def openapi_doc(root: str) -> dict[str, Any]:
    """The OpenAPI 3.0 definition of ``/ogc``, from the layer registry (a path per collection)."""
    error = {"description": "A JSON error naming the parameter", "content": {"application/json": {"schema": {"type": "object"}}}}
    json_ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    geo_ok = {"description": "OK", "content": {GEOJSON: {"schema": {"type": "object"}}}}

    def op(op_id: str, summary: str, ok: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"get": {"operationId": op_id, "summary": summary, "responses": {"200": ok, "400": error}}}
        if parameters:
            out["get"]["parameters"] = parameters
        if op_id not in ("landing", "conformance", "api"):
            out["get"]["security"] = [{"bearer": []}]
            out["get"]["responses"].update({"401": error, "403": error, "404": error})
        return out

    paths: dict[str, Any] = {
        "/": op("landing", "Landing page", json_ok),
        "/conformance": op("conformance", "Conformance classes", json_ok),
        "/api": op("api", "This API definition", {"description": "OK", "content": {OPENAPI: {"schema": {"type": "object"}}}}),
        "/collections": op("collections", "The collections (one per map layer you may read)", json_ok),
    }
    for layer in L.LAYERS.values():
        base = f"/collections/{layer.name}"
        filters = [_param(f, FILTER_TEXTS[f], FILTER_SCHEMAS[f]) for f in L.FILTERS if f in layer.filters and f in FILTER_SCHEMAS]
        props = [
            _param(p.name, f"Equality filter: {p.description}", {"type": p.type})
            for p in layer.properties
            if p.name not in L.FILTERS
        ]
        paths[base] = op(f"{layer.name}-collection", layer.title, json_ok)
        paths[f"{base}/queryables"] = op(f"{layer.name}-queryables", f"{layer.title}: queryables", json_ok)
        paths[f"{base}/items"] = op(
            f"{layer.name}-items", f"{layer.title}: features", geo_ok, [*COMMON.values(), *filters, *props]
        )
        paths[f"{base}/items/{{featureId}}"] = op(
            f"{layer.name}-item",
            f"{layer.title}: one feature",
            geo_ok,
            [{"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}}, COMMON["crs"]],
        )
    return {
        "openapi": "3.0.3",
        "info": {"title": "Anju (安居) OGC API Features", "version": "1.0.0", "description": "Map layers of Anju."},
        "servers": [{"url": root}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "paths": paths,
    }


async def api(request: Request) -> Response:
    """``GET /ogc/api``: the OpenAPI 3.0 definition (no token needed)."""
    return _json(request, openapi_doc(_root(request)), OPENAPI)


ROUTES = [
    Route("/ogc", landing),
    Route("/ogc/", landing),
    Route("/ogc/conformance", conformance),
    Route("/ogc/api", api),
    Route("/ogc/collections", collections),
    Route("/ogc/collections/{collection}", collection),
    Route("/ogc/collections/{collection}/queryables", queryables),
    Route("/ogc/collections/{collection}/items", items),
    Route("/ogc/collections/{collection}/items/{feature}", item),
]
"""The OGC API Features routes, mounted by ``anju.app.create_app``."""
