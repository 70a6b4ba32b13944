"""Load benchmark (issue #16): mixed reads and writes at a fixed rate from a bounded client on 127.0.0.1.

``anju serve --workers W`` runs in a subprocess against a database of your own (it is written to: never the shared
``anju_sichuan``). Requests are scheduled at a fixed rate (``--rate`` a second, open loop); at most ``--concurrency`` are
in flight (a bounded client: a request whose slot is not free waits, and its latency counts from its scheduled time, so a
stall shows up in the percentiles instead of slowing the schedule down). The mix:

- ``site coverage`` (40 %): a relocation site's employment coverage — planned, answered by the fast read path;
- ``households page`` (20 %, as a county officer under row-level security): 20 households with members;
- ``vector tile`` (10 %): every layer of one z10 tile of Xide;
- ``recordIncomeLinkage`` (20 %) and ``recordEmployment`` (10 %): writes with an ``idempotencyKey``, each on one of 200
  households a client-side lock keeps to one writer (so none is a CONFLICT); after a failed write the household's
  version is read again before its next write (the failed one is not retried).

Reported: per operation count, errors, p50/p95/p99 (ms); the server's RSS (all its processes) at start, middle and end;
with ``--restart-db-at S`` the local cluster is stopped at S seconds for ``--down-seconds`` and started again: errors are
counted inside the outage window (stop → start + 5 s) and outside it, and every acknowledged write is looked up afterwards.
``--conflicts N`` first sends N concurrent conflicting edits of one household over HTTP.

    .venv/bin/python -m bench.load --database anju --duration 600 --rate 40
    .venv/bin/python -m bench.load --database anju --duration 120 --restart-db-at 50 --down-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import psutil
from sqlalchemy import text

from anju import db, localdb
from anju.auth import issue_token
from anju.settings import Settings
from bench.common import RESULTS, anju_server, ensure_users, machine

SITE = """query Site { relocationSites(filter: {name: "彝欣社区"}) { nodes { householdCount
  employmentCoverage(asOf: "2024-04-13") { households householdsCovered coverageRate zeroEmploymentHouseholds } } } }"""
PAGE = """query Page { households(first: 20, filter: {areaCode: "513432"}) { totalCount nodes { id code size
  members { name relation } } } }"""
LINKAGE = """mutation Link($h: ID!, $v: Int!, $a: Decimal!, $k: String!) {
  recordIncomeLinkage(input: {householdId: $h, version: $v, mechanism: DIVIDEND, year: 2024, amount: $a, idempotencyKey: $k}) {
    incomeLinkage { id } household { version } } }"""
EMPLOY = """mutation Employ($m: ID!, $v: Int!, $k: String!) { recordEmployment(input: {memberId: $m, version: $v,
  channel: PUBLIC_WELFARE_POST, employerName: "[generated] load bench", startOn: "2024-03-01", stable: false,
  idempotencyKey: $k}) { employment { id } household { version } } }"""
VERSION = "query V($h: ID!) { household(id: $h) { version } }"
TILE = "/tiles/10/803/428.mvt"
MIX = [("site coverage", 40), ("households page", 20), ("vector tile", 10), ("recordIncomeLinkage", 20), ("recordEmployment", 10)]


@dataclass
class Op:
    latencies: list[float] = field(default_factory=list)
    errors_in_outage: int = 0
    errors_outside: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Target:
    household: int
    member: int
    version: int | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Load:
    def __init__(self, url: str, tokens: dict[str, str], targets: list[Target], outage: list[float]) -> None:
        self.url = url
        self.tokens = tokens
        self.targets = targets
        self.ops = {name: Op() for name, _ in MIX}
        self.acked: dict[str, set[int]] = {"recordIncomeLinkage": set(), "recordEmployment": set()}
        self.outage = outage  # [stopped at, started at] (monotonic), filled by the restarter

    def in_outage(self, t0: float, t1: float) -> bool:
        if not self.outage:
            return False
        stop = self.outage[0]
        start = self.outage[1] if len(self.outage) > 1 else float("inf")
        return t1 >= stop - 0.5 and t0 <= start + 5

    async def gql(self, c: httpx.AsyncClient, who: str, query: str, variables: dict[str, Any] | None = None) -> Any:
        r = await c.post(
            self.url + "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )
        body = r.json()
        if r.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{r.status_code} {str(body.get('errors'))[:200]}")
        return body["data"]

    async def write(self, c: httpx.AsyncClient, name: str) -> None:
        target = random.choice(self.targets)
        async with target.lock:  # one writer per household: no CONFLICT by design
            if target.version is None:
                target.version = (await self.gql(c, "bench-admin", VERSION, {"h": str(target.household)}))["household"]["version"]
            key = f"load-{uuid.uuid4()}"
            if name == "recordIncomeLinkage":
                query = LINKAGE
                args: dict[str, Any] = {"h": str(target.household), "a": f"{random.randint(1, 5000)}.00"}
            else:
                query, args = EMPLOY, {"m": str(target.member)}
            try:
                data = await self.gql(c, "bench-admin", query, {**args, "v": target.version, "k": key})
            except Exception:
                target.version = None  # unknown whether it committed: re-read the version before the next write
                raise
            payload = data[name]
            target.version = payload["household"]["version"]
            record = payload.get("incomeLinkage") or payload.get("employment")
            self.acked[name].add(int(record["id"]))

    async def one(self, c: httpx.AsyncClient, name: str) -> None:
        if name == "site coverage":
            await self.gql(c, "bench-admin", SITE)
        elif name == "households page":
            await self.gql(c, "bench-officer", PAGE)
        elif name == "vector tile":
            r = await c.get(self.url + TILE, headers={"Authorization": f"Bearer {self.tokens['bench-admin']}"})
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")
        else:
            await self.write(c, name)

    async def run(self, rate: float, duration: float, concurrency: int, rss: Any) -> None:
        names = [n for n, w in MIX for _ in range(w)]
        slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            start = time.monotonic()
            tasks = []
            i = 0
            middle_done = False
            while (at := start + i / rate) < start + duration:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                if not middle_done and at - start >= duration / 2:
                    rss("middle")
                    middle_done = True
                name = names[i % len(names)]

                async def go(name: str = name, scheduled: float = at) -> None:
                    async with slots:
                        try:
                            await self.one(c, name)
                            self.ops[name].latencies.append(time.monotonic() - scheduled)
                        except Exception as exc:
                            op = self.ops[name]
                            if self.in_outage(scheduled, time.monotonic()):
                                op.errors_in_outage += 1
                            else:
                                op.errors_outside += 1
                                if len(op.samples) < 3:
                                    op.samples.append(f"{type(exc).__name__}: {str(exc)[:160]}")

                tasks.append(asyncio.create_task(go()))
                i += 1
            await asyncio.gather(*tasks)


def _rss(proc: psutil.Process) -> float:
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 1024 / 1024


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def conflicts(url: str, token: str, engine: Any, n: int) -> str:
    """``n`` concurrent edits of one household at versions v0..v0+24: each applied or CONFLICT, none lost."""
    async with engine.connect() as conn:
        hid, v0 = (await conn.execute(text("SELECT id, version FROM household ORDER BY id LIMIT 1"))).one()
        before = int(await conn.scalar(text("SELECT count(*) FROM income_linkage WHERE household_id = :h"), {"h": hid}))
    query = """mutation C($h: ID!, $v: Int!, $a: Decimal!) { recordIncomeLinkage(input: {householdId: $h, version: $v,
      mechanism: DIVIDEND, year: 2021, amount: $a}) { incomeLinkage { id } household { version } } }"""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=120, limits=limits) as c:

        async def edit(i: int) -> Any:
            r = await c.post(
                url + "/graphql",
                json={"query": query, "variables": {"h": str(hid), "v": v0 + i % 25, "a": f"{i + 1}.00"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            return r.status_code, r.json()

        started = time.monotonic()
        answers = await asyncio.gather(*(edit(i) for i in range(n)))
        took = time.monotonic() - started
    applied = [b for s, b in answers if s == 200 and not b.get("errors")]
    conflict = [b for s, b in answers if b.get("errors") and b["errors"][0]["extensions"]["code"] == "CONFLICT"]
    other = n - len(applied) - len(conflict)
    others = [f"{s} {str(b.get('errors'))[:150]}" for s, b in answers if b not in applied and b not in conflict][:3]
    async with engine.connect() as conn:
        final = int(await conn.scalar(text("SELECT version FROM household WHERE id = :h"), {"h": hid}))
        after = int(await conn.scalar(text("SELECT count(*) FROM income_linkage WHERE household_id = :h"), {"h": hid}))
        ids = {int(b["data"]["recordIncomeLinkage"]["incomeLinkage"]["id"]) for b in applied}
        present = int(await conn.scalar(text("SELECT count(*) FROM income_linkage WHERE id = ANY(:i)"), {"i": list(ids)}))
    ok = other == 0 and final == v0 + len(applied) and after - before == len(applied) == present
    return (
        f"**{n} concurrent conflicting edits of household {hid}** (versions {v0}..{v0 + 24}, one HTTP connection each, "
        f"{took:.1f} s): {len(applied)} applied, {len(conflict)} CONFLICT, {other} other; final version {final} = "
        f"{v0} + {len(applied)} applied: {final == v0 + len(applied)}; new rows {after - before}, acknowledged rows present "
        f"{present}/{len(ids)} → {'OK' if ok else 'FAILED'}" + (f" (other: {'; '.join(others)})" if others else "") + "\n"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="anju", help="a database of your own with the demo seed (it is written to)")
    ap.add_argument("--duration", type=float, default=600, help="seconds (the issue asks for 600; 0: only --conflicts)")
    ap.add_argument("--rate", type=float, default=40, help="requests a second, fixed")
    ap.add_argument("--concurrency", type=int, default=16, help="most requests in flight")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--restart-db-at", type=float, default=None, help="stop the local cluster after this many seconds")
    ap.add_argument("--down-seconds", type=float, default=10)
    ap.add_argument("--conflicts", type=int, default=0, help="first send this many concurrent conflicting edits")
    ap.add_argument("--output", default="load.md", help="file under bench/results (appended)")
    args = ap.parse_args()

    settings = Settings()
    if args.restart_db_at is not None and not settings.uses_local_db:
        raise SystemExit("--restart-db-at needs the project-local cluster (DATABASE_URL unset)")
    engine = db.create_engine(settings, args.database)
    users = await ensure_users(db.create_sessionmaker(engine))
    tokens = {name: issue_token(settings, name) for name in users}
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT h.id, min(m.id) FROM household h JOIN member m ON m.household_id = h.id "
                    "WHERE h.admin_code LIKE '513432%' GROUP BY h.id ORDER BY h.id LIMIT 200"
                )
            )
        ).all()
    targets = [Target(int(h), int(m), None) for h, m in rows]
    report = [f"### Load ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n"]
    report.append(
        f"Machine: {machine()} (shared with other jobs). Database `{args.database}` (the demo seed: 1 site, 1,573 households; "
        f"writes labelled `[generated] load bench`). `anju serve --workers {args.workers}`; client on 127.0.0.1: "
        f"{args.rate:g} requests/s for {args.duration:g} s, at most {args.concurrency} in flight."
        + (
            f" The database is stopped at {args.restart_db_at:g} s for {args.down_seconds:g} s and started again."
            if args.restart_db_at is not None
            else ""
        )
        + "\n"
    )
    with anju_server(settings, args.database, "--workers", str(args.workers)) as (gql_url, proc):
        url = gql_url.removesuffix("/graphql")
        server = psutil.Process(proc.pid)
        if args.conflicts:
            report.append(await conflicts(url, tokens["bench-admin"], engine, args.conflicts) + "\n")
        if args.duration <= 0:  # the conflicting edits alone
            _write(report, args.output)
            await engine.dispose()
            return
        rss: dict[str, float] = {}

        def sample(when: str) -> None:
            rss[when] = _rss(server)

        outage: list[float] = []
        load = Load(url, tokens, targets, outage)

        async def restarter() -> None:
            if args.restart_db_at is None:
                return
            await asyncio.sleep(args.restart_db_at)
            outage.append(time.monotonic())
            await asyncio.to_thread(localdb.stop, settings.local_db)
            await asyncio.sleep(args.down_seconds)
            await asyncio.to_thread(localdb.start, settings.local_db)
            outage.append(time.monotonic())

        sample("start")
        await asyncio.gather(load.run(args.rate, args.duration, args.concurrency, sample), restarter())
        sample("end")
        report.append("| operation | requests | errors (outside outage) | errors (during outage) | p50 ms | p95 ms | p99 ms |\n")
        report.append("|---|---|---|---|---|---|---|\n")
        for name, op in load.ops.items():
            lat = op.latencies
            report.append(
                f"| {name} | {len(lat) + op.errors_in_outage + op.errors_outside} | {op.errors_outside} | "
                f"{op.errors_in_outage} | {_pct(lat, 0.5):.1f} | {_pct(lat, 0.95):.1f} | {_pct(lat, 0.99):.1f} |\n"
            )
        all_lat = [x for op in load.ops.values() for x in op.latencies]
        report.append(
            f"\nServer RSS (all {len(server.children()) + 1} processes): start {rss['start']:.0f} MiB, middle "
            f"{rss.get('middle', float('nan')):.0f} MiB, end {rss['end']:.0f} MiB. Overall p50 "
            f"{statistics.median(all_lat) * 1000:.1f} ms over {len(all_lat)} answered requests.\n"
        )
        samples = [f"{n}: {s}" for n, op in load.ops.items() for s in op.samples]
        if samples:
            report.append("\nErrors outside the outage (first of each): " + "; ".join(samples) + "\n")
    await engine.dispose()  # its pooled connections may predate a database restart
    async with engine.connect() as conn:
        for name, table in (("recordIncomeLinkage", "income_linkage"), ("recordEmployment", "employment")):
            ids = list(load.acked[name])
            present = int(await conn.scalar(text(f"SELECT count(*) FROM {table} WHERE id = ANY(:i)"), {"i": ids}))
            report.append(f"\nAcknowledged {name}: {len(ids)}, present afterwards: {present}.")
    await engine.dispose()
    _write(report, args.output)


def _write(report: list[str], output: str = "load.md") -> None:
    text_out = "".join(report) + "\n\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / output, "a", encoding="utf-8") as f:
        f.write(text_out)
    print(text_out)  # noqa: T201 - a benchmark reports on stdout


if __name__ == "__main__":
    asyncio.run(main())
