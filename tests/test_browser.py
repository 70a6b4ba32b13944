"""Anju in a real browser (issue #14): Debian's chromium driven by playwright, against the app served by uvicorn.

- the web map (/map) logs in, draws every layer of the tile catalog (rendered features counted with MapLibre's
  ``queryRenderedFeatures`` and compared with the database), colours households by zero-employment on the picked date,
  opens a popup, and logs no console error;
- a partner's session has no household layer and colours only its paired county;
- a page served by another origin (a second HTTP server) reads tiles and GraphQL through CORS;
- GraphiQL loads offline (its scripts from the project's npm install) and runs a query.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import coordTransform as ct
import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import text

from anju.app import create_app
from anju.auth import issue_token
from anju.login import policy
from resolvers.logins import set_password
from tests.live import serving, static_files
from tests.test_layers import tile_of

CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by `make install`
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-background-networking",  # no calls home: the machine has no internet
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-unsafe-swiftshader",  # WebGL (MapLibre) on the CPU
    "--use-angle=swiftshader",
]
PASSWORD = "correct horse battery staple"
DATE = "2024-04-13"
"""A date of the demo data's employment records (the report's survey)."""


@pytest.fixture(scope="module")
async def passwords(sm, users, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    for name in ("t-admin", "t-partner"):
        assert await set_password(sm, name, PASSWORD, policy(settings))
    return {"t-admin": PASSWORD, "t-partner": PASSWORD}


@pytest.fixture(scope="module")
def server(settings, engine, passwords):  # type: ignore[no-untyped-def]
    with serving(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        await b.close()


class Console:
    """Every console error and uncaught exception of a page, and every request it made."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))


async def _login(browser: Browser, server: str, name: str) -> tuple[Page, Console]:
    page = await browser.new_page(viewport={"width": 1200, "height": 800})
    console = Console(page)
    await page.goto(f"{server}/map")
    assert "安居地图" in await page.title()
    await page.fill("#name", name)
    await page.fill("#password", PASSWORD)
    await page.click("#login-button")
    await page.wait_for_function("window.anju && window.anju.ready", timeout=60_000)
    return page, console


async def _idle(page: Page) -> None:
    await page.evaluate("() => new Promise(r => { const m = window.anju.map; m.loaded() ? r() : m.once('idle', r); })")
    await page.wait_for_function("window.anju.map.loaded() && window.anju.map.areTilesLoaded()", timeout=60_000)


RENDERED = """(layerIds) => {
  const out = {};
  for (const id of layerIds) {
    const seen = new Map();
    for (const f of window.anju.map.queryRenderedFeatures({layers: [id]})) seen.set(f.id, f.properties);
    out[id] = [...seen.entries()].map(([id, p]) => ({id, ...p}));
  }
  return out;
}"""


async def _rendered(page: Page) -> dict[str, list[dict[str, Any]]]:
    ids = [i for ids in (await page.evaluate("window.anju.styleLayers")).values() for i in ids if not i.endswith("-line")]
    return await page.evaluate(RENDERED, ids)  # type: ignore[no-any-return]


async def _fit(page: Page, box: tuple[float, float, float, float]) -> None:
    await page.evaluate("(b) => window.anju.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: 60, duration: 0})", list(box))
    await _idle(page)


async def _count(engine: Any, sql: str, **params: Any) -> Any:
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).one()


async def test_map_logs_in_renders_every_layer_and_opens_a_popup(browser, server, engine, settings):  # type: ignore[no-untyped-def]
    page, console = await _login(browser, server, "t-admin")
    catalog = await page.evaluate("window.anju.catalog.layers.map(l => l.name)")
    assert catalog == ["relocation_sites", "facilities", "households", "admin_areas"]  # the registry's, via GET /tiles
    await _idle(page)
    today = dt.date.fromisoformat(await page.evaluate("document.getElementById('as-of').value"))

    # The whole prefecture in view: every area with a boundary, the site, facilities and households as clusters.
    r = await _rendered(page)
    (areas,) = await _count(engine, "SELECT count(*) FROM admin_area WHERE geom IS NOT NULL")
    assert len(r["admin_areas-fill"]) == areas == 18
    (site_id,) = await _count(engine, "SELECT id FROM relocation_site")
    assert [f["id"] for f in r["relocation_sites-points"]] == [site_id]
    (open_facilities,) = await _count(
        engine, "SELECT count(*) FROM facility WHERE anju_open_on(opened_on, closed_on, CAST(:d AS date))", d=today
    )
    shown = len(r["facilities-points"]) + sum(f["point_count"] for f in r["facilities-clusters"])
    assert shown == open_facilities > 0
    (households,) = await _count(engine, "SELECT count(*) FROM household WHERE dwelling IS NOT NULL")
    clusters = r["households-clusters"]
    assert clusters and len(r["households-points"]) + sum(f["point_count"] for f in clusters) == households == 1573

    # Areas coloured by employment coverage: the county's feature state is the API's coverage rate on the date.
    await page.fill("#as-of", DATE)
    await page.dispatch_event("#as-of", "change")
    await page.wait_for_function(f"document.getElementById('status').textContent.includes('{DATE}')")
    await _idle(page)
    api = await page.evaluate(
        """async (d) => (await (await fetch('/graphql', {method: 'POST', headers: {'content-type': 'application/json',
        authorization: 'Bearer ' + JSON.parse(sessionStorage.getItem('anju-session')).access},
        body: JSON.stringify({query: `{ adminArea(code: "513432") { employmentCoverage(asOf: "${d}") {
        coverageRate zeroEmploymentHouseholds } } }`})})).json()).data.adminArea.employmentCoverage""",
        DATE,
    )
    state = await page.evaluate(
        "window.anju.map.getFeatureState({source: 'anju-admin_areas', sourceLayer: 'admin_areas', id: 513432})"
    )
    assert state == {"coverage": api["coverageRate"]} and 0 < api["coverageRate"] < 1

    # Close enough for single households (no clusters above zoom 12): each drawn once, coloured by zero-employment on DATE.
    box = await _count(
        engine, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(dwelling) e FROM household) x"
    )
    await _fit(page, tuple(box))
    assert await page.evaluate("window.anju.map.getZoom()") >= settings.features.cluster_below_zoom
    r = await _rendered(page)
    points = r["households-points"]
    assert len(points) == households and not r["households-clusters"]
    assert sum(1 for p in points if p["zeroEmployment"]) == api["zeroEmploymentHouseholds"]
    fills = await page.evaluate(
        "window.anju.map.queryRenderedFeatures({layers: ['households-points']}).slice(0, 50)"
        ".map(f => [f.properties.zeroEmployment, f.layer.paint['circle-color']])"
    )
    red, green = {"r": 215 / 255, "g": 48 / 255, "b": 31 / 255, "a": 1}, {"r": 49 / 255, "g": 163 / 255, "b": 84 / 255, "a": 1}
    assert all(c == pytest.approx(red if zero else green) for zero, c in fills)

    # A popup on the site: coverage, nearest facilities and income linkages.
    (lon, lat) = await _count(engine, "SELECT ST_X(location), ST_Y(location) FROM relocation_site")
    xy = await page.evaluate("([lon, lat]) => window.anju.map.project([lon, lat])", [lon, lat])
    box_ = await page.locator("#map canvas").bounding_box()
    assert box_ is not None
    await page.mouse.click(box_["x"] + xy["x"], box_["y"] + xy["y"])
    popup = page.locator(".maplibregl-popup-content")
    await popup.filter(has_text="利益联结").wait_for(timeout=30_000)
    body = await popup.inner_text()
    (site_name,) = await _count(engine, "SELECT name FROM relocation_site")
    (nearest,) = await _count(
        engine,
        "SELECT f.name FROM facility f, relocation_site s WHERE anju_open_on(f.opened_on, f.closed_on, CAST(:d AS date)) "
        "ORDER BY ST_Distance(f.location::geography, s.location::geography) LIMIT 1",
        d=dt.date.fromisoformat(DATE),
    )
    assert site_name in body and "就业覆盖率" in body and "最近设施" in body and nearest in body
    assert console.errors == []
    await page.close()


async def test_partner_session_has_no_household_layer(browser, server, users, engine):  # type: ignore[no-untyped-def]
    page, console = await _login(browser, server, "t-partner")
    await _idle(page)
    layers = await page.evaluate("Object.keys(window.anju.styleLayers)")
    assert sorted(layers) == ["admin_areas", "facilities", "relocation_sites"]
    assert await page.evaluate("window.anju.map.getStyle().layers.filter(l => l.id.startsWith('households')).length") == 0
    assert not [u for u in console.requests if "households" in u]
    r = await _rendered(page)
    assert r["relocation_sites-points"] and r["admin_areas-fill"]
    assert all(f.get("households") is None for f in r["relocation_sites-points"])  # a partner sees no household counts
    # Only the paired county (Xide) is coloured: a partner's aggregates are its paired counties'.
    assert await page.evaluate("window.anju.coverage.map(c => c.code)") == ["513432"]
    coloured = await page.evaluate(
        "window.anju.map.queryRenderedFeatures({layers: ['admin_areas-fill']})"
        ".filter(f => f.state.coverage !== undefined).map(f => f.properties.code)"
    )
    assert set(coloured) == {"513432"}
    # The site's popup: nearest facilities, and none of the site's own aggregates (not for partners): no error shown.
    (lon, lat, nearest) = await _count(
        engine,
        "SELECT ST_X(s.location), ST_Y(s.location), (SELECT f.name FROM facility f WHERE anju_open_on(f.opened_on, "
        "f.closed_on, CAST(:d AS date)) ORDER BY ST_Distance(f.location::geography, s.location::geography) LIMIT 1) "
        "FROM relocation_site s",
        d=dt.date.fromisoformat(await page.evaluate("document.getElementById('as-of').value")),
    )
    await _fit(page, (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01))
    xy = await page.evaluate("([lon, lat]) => window.anju.map.project([lon, lat])", [lon, lat])
    canvas = await page.locator("#map canvas").bounding_box()
    assert canvas is not None
    await page.mouse.click(canvas["x"] + xy["x"], canvas["y"] + xy["y"])
    popup = page.locator(".maplibregl-popup-content").filter(has_text="最近设施")
    await popup.wait_for(timeout=30_000)
    text_ = await popup.inner_text()
    assert nearest in text_ and "就业覆盖率" not in text_ and await page.locator(".maplibregl-popup .error").count() == 0
    await page.locator("#logout").click()
    await page.locator("#login").wait_for()
    assert await page.evaluate("sessionStorage.getItem('anju-session')") is None
    assert console.errors == []
    await page.close()


CROSS_ORIGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>another origin</title><link rel="icon" href="data:,">
<script>
window.check = async (anju, token, tile) => {
  const auth = {authorization: 'Bearer ' + token};
  const t = await fetch(`${anju}/tiles/relocation_sites/${tile}.mvt`, {headers: auth});
  const bytes = (await t.arrayBuffer()).byteLength;
  const post = await fetch(`${anju}/graphql`, {method: 'POST', headers: {...auth, 'content-type': 'application/json',
    accept: 'application/graphql-response+json'}, body: JSON.stringify({query: '{ relocationSites { nodes { name } } }'})});
  const q = encodeURIComponent('{ adminArea(code: "513432") { name } }');
  const get = await fetch(`${anju}/graphql?query=${q}`, {headers: auth});
  return {tile: t.status, bytes, etag: t.headers.get('etag'), post: post.status, postType: post.headers.get('content-type'),
          postBody: await post.json(), get: get.status, getBody: await get.json()};
};
</script>"""


async def test_page_on_another_origin_reads_tiles_and_graphql_through_cors(browser, server, settings, engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "index.html").write_text(CROSS_ORIGIN_PAGE, encoding="utf-8")
    (lon, lat, name) = await _count(engine, "SELECT ST_X(location), ST_Y(location), name FROM relocation_site")
    x, y = tile_of(lon, lat, 12)
    with static_files(tmp_path) as other:
        assert other.split(":")[-1] != server.split(":")[-1]  # another port: another origin
        page = await browser.new_page()
        console = Console(page)
        await page.goto(f"{other}/index.html")
        got = await page.evaluate(
            "([a, t, tile]) => window.check(a, t, tile)", [server, issue_token(settings, "t-admin"), f"12/{x}/{y}"]
        )
        await page.close()
    assert got["tile"] == 200 and got["bytes"] > 0 and got["etag"]  # the ETag header is exposed to the page
    assert got["post"] == 200 and got["postType"].startswith("application/graphql-response+json")
    assert got["postBody"] == {"data": {"relocationSites": {"nodes": [{"name": name}]}}}
    assert got["get"] == 200 and got["getBody"] == {"data": {"adminArea": {"name": "喜德县"}}}
    assert console.errors == []


async def test_graphiql_runs_offline_with_the_map_login(browser, server):  # type: ignore[no-untyped-def]
    page, console = await _login(browser, server, "t-admin")  # the tab's session: GraphiQL's Authorization header
    await page.goto(f"{server}/graphql")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await editor.wait_for(timeout=30_000)
    await editor.evaluate("(e, q) => e.CodeMirror.setValue(q)", "{ me { name role } }")
    await page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    await result.filter(has_text="t-admin").wait_for(timeout=30_000)
    shown = await page.locator(".result-window .CodeMirror").evaluate("e => e.CodeMirror.getValue()")
    assert json.loads(shown) == {"data": {"me": {"name": "t-admin", "role": "ADMIN"}}}
    hosts = {u.split("/")[2] for u in console.requests if u.startswith("http")}
    assert hosts == {server.split("/")[2]}  # nothing from a CDN: every script and style is Anju's own
    assert console.errors == []
    await page.close()


async def test_graphiql_refreshes_the_login_when_its_access_token_is_due(browser, server, engine):  # type: ignore[no-untyped-def]
    """GraphiQL in the map's tab: when the session's access token is due (here: made unusable and due now), the next
    query refreshes the login (POST /auth/refresh, the refresh token rotated) and runs with the new access token."""
    page, console = await _login(browser, server, "t-admin")
    await page.goto(f"{server}/graphql")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await editor.wait_for(timeout=30_000)
    before = await page.evaluate("() => JSON.parse(sessionStorage.getItem('anju-session'))")
    await page.evaluate(
        "() => { const s = JSON.parse(sessionStorage.getItem('anju-session'));"
        " sessionStorage.setItem('anju-session', JSON.stringify({...s, access: 'not.a.token', expires: Date.now() - 1000})); }"
    )
    await editor.evaluate("(e, q) => e.CodeMirror.setValue(q)", "{ me { name } }")
    await page.locator(".graphiql-execute-button").click()
    await page.locator(".result-window").filter(has_text="t-admin").wait_for(timeout=30_000)
    shown = await page.locator(".result-window .CodeMirror").evaluate("e => e.CodeMirror.getValue()")
    assert json.loads(shown) == {"data": {"me": {"name": "t-admin"}}}
    after = await page.evaluate("() => JSON.parse(sessionStorage.getItem('anju-session'))")
    assert after["refresh"] != before["refresh"] and after["access"] not in (before["access"], "not.a.token")
    spent = hashlib.sha256(before["refresh"].encode()).digest()
    async with engine.connect() as c:  # the map's refresh token was used (rotated) by GraphiQL's refresh
        assert await c.scalar(text("SELECT rotated_at IS NOT NULL FROM refresh_token WHERE token_hash = :h"), {"h": spent})
    assert any(u.endswith("/auth/refresh") for u in console.requests)
    assert console.errors == []
    await page.close()


async def test_gcj02_basemap_gets_the_layers_in_gcj02(browser, settings, engine, passwords):  # type: ignore[no-untyped-def]
    """With an AMap (GCJ-02) basemap the page asks for its tiles in GCJ-02: the site lands on its shifted position."""
    page_settings = settings.map_page.model_copy(update={"basemap_coord_sys": "GCJ02"})
    with serving(create_app(settings.model_copy(update={"map_page": page_settings}))) as url:
        page, console = await _login(browser, url, "t-admin")
        await _idle(page)
        (lon, lat) = await _count(engine, "SELECT ST_X(location), ST_Y(location) FROM relocation_site")
        g_lon, g_lat = ct.wgs84_to_gcj02(lon, lat)  # the published formula (coordTransform), not Anju's SQL
        await _fit(page, (g_lon - 0.002, g_lat - 0.002, g_lon + 0.002, g_lat + 0.002))
        drawn = await page.evaluate(
            "window.anju.map.queryRenderedFeatures({layers: ['relocation_sites-points']}).map(f => f.geometry.coordinates)"
        )
        assert drawn and all(p == pytest.approx([g_lon, g_lat], abs=2e-5) for p in drawn)
        assert abs(drawn[0][0] - lon) + abs(drawn[0][1] - lat) > 1e-3  # hundreds of metres from the WGS84 position
        tiles = [u for u in console.requests if "/tiles/" in u]
        assert tiles and all("coordSys=GCJ02" in u for u in tiles)
        assert console.errors == []
        await page.close()
