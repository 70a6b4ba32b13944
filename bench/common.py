"""Benchmark harness shared by ``bench/*.py`` (not tests: nothing here asserts a time).

For each case (a GraphQL query) it
1. runs the query once in-process with a statement recorder, giving the SQL the resolvers send
   (text + parameters) and the number of statements per request;
2. times that same SQL replayed directly over one asyncpg connection (the raw-SQL baseline);
3. times the query through the full stack: HTTP POST to a real uvicorn server (``anju serve``)
   started on a free loopback port against the benchmark database.
Runs alternate between the two so machine noise hits both alike; medians and p95 are reported
with the GraphQL/SQL ratio. Results go to stdout and ``bench/results/<name>.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx2 as httpx
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from anju import db
from anju.auth import issue_token
from anju.settings import Settings
from resolvers.access import Role, Viewer, add_user, viewer_by_name
from schema import Context, build_schema

BENCH_COUNTY = "513432"
BENCH_USERS = {
    "bench-admin": (Role.ADMIN, ()),
    "bench-planner": (Role.PLANNER, ()),
    "bench-officer": (Role.COUNTY_OFFICER, (BENCH_COUNTY,)),
    "bench-partner": (Role.PARTNER, ()),
}
"""Who the benchmark asks as: one user per role; the officer keeps Xide, the partner is paired with it."""

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class Case:
    """One benchmarked request: a GraphQL query and its variables."""

    name: str
    query: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    """For a non-GraphQL endpoint (tiles): GET this path; ``record_with`` gives its SQL."""
    record_with: Any = None
    user: str = "bench-admin"
    """Which of ``BENCH_USERS`` asks (the token sent, and the viewer scope of the recorded SQL)."""


@dataclass
class Result:
    case: Case
    statements: int
    graphql_ms: list[float]
    sql_ms: list[float]

    @staticmethod
    def _p(values: list[float], q: float) -> float:
        s = sorted(values)
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]

    def row(self) -> str:
        g50, g95 = statistics.median(self.graphql_ms), self._p(self.graphql_ms, 0.95)
        s50, s95 = statistics.median(self.sql_ms), self._p(self.sql_ms, 0.95)
        rps = 1000.0 / statistics.mean(self.graphql_ms)
        return (
            f"| {self.case.name} | {g50:.1f} | {g95:.1f} | {rps:.1f} | {s50:.1f} | {s95:.1f} | "
            f"{g50 / s50:.2f}× | {self.statements} |"
        )


HEADER = (
    "| case | GraphQL p50 ms | GraphQL p95 ms | GraphQL req/s | direct SQL p50 ms | direct SQL p95 ms "
    "| p50 ratio | SQL statements / request |\n|---|---|---|---|---|---|---|---|"
)


def machine() -> str:
    """One line describing the machine the numbers come from."""
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name")).split(":")[1].strip()
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def load_note(start: tuple[float, float, float]) -> str:
    """The machine's load during a run (shared machine: medians are reported), from ``os.getloadavg()`` at its start."""
    end = os.getloadavg()
    return f"Load average (1 min) {start[0]:.1f} at the start, {end[0]:.1f} at the end, on {os.cpu_count()} cores (shared)."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def anju_server(settings: Settings, database: str, *args: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``anju serve ARGS`` in a subprocess against ``database``; yields its /graphql URL and the process."""
    port = free_port()
    url = make_url(settings.sqlalchemy_url(database)).render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "serve", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}/graphql", proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Until GET ``url`` answers 200; RuntimeError when ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"benchmark server {proc.args!r} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"benchmark server {proc.args!r} did not answer {url}")


@contextlib.contextmanager
def server(settings: Settings, database: str) -> Iterator[str]:
    """``anju serve`` in a subprocess against ``database``; yields its /graphql URL."""
    with anju_server(settings, database) as (url, _):
        yield url


async def ensure_users(sm: async_sessionmaker) -> dict[str, Viewer]:  # type: ignore[type-arg]
    """The benchmark users (and a "[generated] bench partner" paired with BENCH_COUNTY), created when missing."""
    async with sm() as s, s.begin():
        pid = await s.scalar(text("SELECT id FROM cooperation_partner WHERE name = '[generated] bench partner'"))
        if pid is None:
            pid = await s.scalar(
                text(
                    "INSERT INTO cooperation_partner (name, kind) VALUES ('[generated] bench partner', 'enterprise') RETURNING id"
                )
            )
            await s.execute(text("INSERT INTO partner_county VALUES (:p, :c)"), {"p": pid, "c": BENCH_COUNTY})
    out = {}
    for name, (role, areas) in BENCH_USERS.items():
        if await viewer_by_name(sm, name) is None:
            await add_user(sm, name, role, areas, pid if role is Role.PARTNER else None)
        out[name] = await viewer_by_name(sm, name)
    return out  # type: ignore[return-value]


async def record(
    sm: async_sessionmaker,
    settings: Settings,
    case: Case,  # type: ignore[type-arg]
    viewer: Viewer,
) -> list[tuple[str, tuple[Any, ...]]]:
    """Run the case in-process once as ``viewer``; return the SQL statements it sent, with their parameters
    (the viewer's scope statement included: the baseline replays exactly what the service sends)."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    engine = sm.kw["bind"].sync_engine

    def on(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append((statement, tuple(parameters or ())))

    event.listen(engine, "before_cursor_execute", on)
    try:
        if case.record_with is not None:
            await case.record_with(sm, viewer)
        else:
            schema = build_schema(settings)
            r = await schema.execute(
                case.query,
                variable_values=case.variables or None,
                context_value=Context(sessionmaker=sm, settings=settings, viewer=viewer),
            )
            if r.errors:
                raise RuntimeError(f"{case.name}: {r.errors}")
    finally:
        event.remove(engine, "before_cursor_execute", on)
    return [(sql_, p) for sql_, p in sent if not sql_.lstrip().upper().startswith(("BEGIN", "ROLLBACK", "COMMIT"))]


async def run_cases(
    name: str, title: str, cases: list[Case], *, database: str = "anju_sichuan", runs: int = 15, warmup: int = 2, notes: str = ""
) -> str:
    """Benchmark ``cases``; print and save the markdown table; return it."""
    settings = Settings()
    engine = db.create_engine(settings, database)
    sm = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.connect() as c:
        n = await c.scalar(text("SELECT count(*) FROM household"))
    if not n or n < 100_000:
        raise SystemExit(f"database {database} holds {n} households: run `anju seed --scale sichuan` first")
    viewers = await ensure_users(sm)
    recorded = {c.name: await record(sm, settings, c, viewers[c.user]) for c in cases}
    tokens = {name: {"Authorization": f"Bearer {issue_token(settings, name)}"} for name in viewers}
    raw_url = make_url(settings.sqlalchemy_url(database)).set(drivername="postgresql")
    # the same session settings as the service's engine (anju.db.create_engine), so both sides plan alike
    conn = await asyncpg.connect(raw_url.render_as_string(hide_password=False), server_settings={"jit": "off"})
    results = []
    try:
        with server(settings, database) as url, httpx.Client(timeout=120) as client:
            for case in cases:
                g: list[float] = []
                s: list[float] = []
                for i in range(warmup + runs):
                    t0 = time.perf_counter()
                    if case.path is not None:
                        resp = client.get(url.removesuffix("/graphql") + case.path, headers=tokens[case.user])
                        t1 = time.perf_counter()
                        if resp.status_code != 200:
                            raise RuntimeError(f"{case.name}: {resp.status_code}")
                    else:
                        resp = client.post(
                            url, json={"query": case.query, "variables": case.variables}, headers=tokens[case.user]
                        )
                        t1 = time.perf_counter()
                        body = resp.json()
                        if resp.status_code != 200 or body.get("errors"):
                            raise RuntimeError(f"{case.name}: {resp.status_code} {str(body)[:300]}")
                    t2 = time.perf_counter()
                    async with conn.transaction():
                        for sql_, params in recorded[case.name]:
                            await conn.fetch(sql_, *params)
                    t3 = time.perf_counter()
                    if i >= warmup:
                        g.append((t1 - t0) * 1000)
                        s.append((t3 - t2) * 1000)
                results.append(Result(case, len(recorded[case.name]), g, s))
    finally:
        await conn.close()
        await engine.dispose()
    async with db.create_engine(settings, database).connect() as c:
        sizes = (
            await c.execute(
                text(
                    "SELECT (SELECT count(*) FROM relocation_site), (SELECT count(*) FROM household), "
                    "(SELECT count(*) FROM member), (SELECT count(*) FROM employment), "
                    "(SELECT count(*) FROM facility)"
                )
            )
        ).one()
    table = (
        "\n".join(
            [
                f"### {title}",
                "",
                f"Machine: {machine()}. Data: `{database}` ({sizes[0]:,} sites, {sizes[1]:,} households, {sizes[2]:,} members, "
                f"{sizes[3]:,} employments, {sizes[4]:,} facilities). {runs} runs per case after {warmup} warm-ups, "
                "GraphQL (or the tile endpoint) over HTTP (uvicorn, one client, sequential) alternating with the same SQL "
                "replayed over one asyncpg connection.",
                "",
                HEADER,
                *[r.row() for r in results],
                "",
                notes,
            ]
        ).rstrip()
        + "\n"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(table, encoding="utf-8")
    print(table)  # noqa: T201 - a benchmark reports on stdout
    return table


def main(coro: Any) -> None:
    asyncio.run(coro)
