"""Pages Anju serves to browsers (GraphiQL at ``GET /graphql`` for a browser, the web map at ``/map``), no CDN.

Their assets come from the project's own npm install (``web/``, ``npm ci`` in ``make install``).

- ``GET /map``: the map page (``web/pages/map.html``; its settings ``map_page.*`` written into it), ``/map/map.js``,
  ``/map/map.css``;
- ``GET /assets/{name}``: MapLibre GL, React and GraphiQL files out of ``web/node_modules`` (``ASSETS``);
- ``graphiql_page()``: the GraphiQL page ``anju.app`` answers.

None of these hold data, so they need no token (``anju.app.PUBLIC_PREFIXES``); the data the pages show comes from the
tiles and GraphQL with the token of ``POST /auth/login``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from anju.responses import error_response
from anju.settings import PROJECT_ROOT, Settings

WEB = PROJECT_ROOT / "web"
PAGES = WEB / "pages"
NODE_MODULES = WEB / "node_modules"
JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
ASSETS = {
    "maplibre-gl.js": ("maplibre-gl/dist/maplibre-gl.js", JS),
    "maplibre-gl.css": ("maplibre-gl/dist/maplibre-gl.css", CSS),
    "react.js": ("react/umd/react.production.min.js", JS),
    "react-dom.js": ("react-dom/umd/react-dom.production.min.js", JS),
    "graphiql.js": ("graphiql/graphiql.min.js", JS),
    "graphiql.css": ("graphiql/graphiql.min.css", CSS),
}
"""``/assets/{name}`` → (file under ``web/node_modules``, media type): the npm packages of ``web/package.json``."""
PAGE_FILES = {"/map/map.js": ("map.js", JS), "/map/map.css": ("map.css", CSS), "/graphiql/start.js": ("graphiql-start.js", JS)}
"""Anju's own page scripts and styles (``web/pages``)."""
NOT_INSTALLED = "browser assets are not installed: run `make install` (npm ci in web/)"


async def asset(request: Request) -> Response:
    """``GET /assets/{name}``: one of ``ASSETS``; 404 for other names, 503 when ``npm ci`` has not run."""
    found = ASSETS.get(request.path_params["name"])
    if found is None:
        return error_response(f"no asset {request.path_params['name'][:60]!r}; assets: {', '.join(ASSETS)}", 404, "NOT_FOUND")
    path = NODE_MODULES / found[0]
    if not path.is_file():
        return error_response(NOT_INSTALLED, 503, "INTERNAL")
    return FileResponse(path, media_type=found[1], headers={"Cache-Control": "public, max-age=86400"})


@functools.cache
def page_bytes(name: str) -> bytes:
    """The file ``web/pages/<name>``, read once per process (a changed page is served after a restart)."""
    return (PAGES / name).read_bytes()


async def page_file(request: Request) -> Response:
    """``GET /map/map.js`` and the other files of ``PAGE_FILES`` (``page_bytes``)."""
    name, media_type = PAGE_FILES[request.url.path]
    return Response(page_bytes(name), media_type=media_type, headers={"Cache-Control": "no-cache"})


def page_config(settings: Settings) -> dict[str, object]:
    """What the map page needs to know before login: the basemap settings and today's date (Asia/Shanghai)."""
    m = settings.map_page
    return {
        "basemapUrl": m.basemap_url,
        "basemapCoordSys": m.basemap_coord_sys,
        "basemapAttribution": m.basemap_attribution,
        "today": dt.datetime.now(ZoneInfo(settings.timezone)).date().isoformat(),
    }


async def map_page(request: Request) -> Response:
    """``GET /map``: the web map page (login form first)."""
    config = json.dumps(page_config(request.state.settings), ensure_ascii=False).replace("<", "\\u003c")
    html = page_bytes("map.html").decode("utf-8").replace("__CONFIG__", config)
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def graphiql_page() -> str:
    """The GraphiQL page (``web/pages/graphiql.html``, ``page_bytes``), its scripts under ``/assets``."""
    return page_bytes("graphiql.html").decode("utf-8")


ROUTES = [
    Route("/map", map_page),
    *(Route(path, page_file) for path in PAGE_FILES),
    Route("/assets/{name}", asset),
]
"""The page routes, mounted by ``anju.app.create_app``; public (no data)."""
PUBLIC_PREFIXES = ("/map", "/assets/", "/graphiql/")
"""Path prefixes of these routes, for ``anju.app``'s list of routes that need no token."""
