"""Operating Anju (issue #16): metrics, request ids and logs, slow clients, outages, idempotency keys, conflicting edits,
backup and restore — against real PostGIS, real server processes and real sockets (the outage is a real TCP proxy between
the server and PostgreSQL that the test cuts and restores; nothing is mocked)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import text
from starlette.testclient import TestClient

from anju import db
from anju.app import create_app
from anju.backup import key_fingerprint
from anju.settings import MetricsSettings
from resolvers.access import Role, Viewer
from schema import Context

SITE_QUERY = 'query Sites { relocationSites(filter: {name: "彝欣社区"}) { nodes { householdCount } } }'
BAD_QUERY = "query Bad { households(first: 100000) { nodes { id } } }"
SECRET_VALUE = "秘密-variable-value-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics answer, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value for fam in text_string_to_metric_families(body) for s in fam.samples}


def _sum(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


# --------------------------------------------------------------------------- in-process: metrics, ids, logs


@pytest.fixture(scope="module")
def client(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    s = settings.model_copy(update={"metrics": MetricsSettings(token=SecretStr("scrape-secret"), allowed_networks=[])})
    with TestClient(create_app(s), headers=admin_headers) as c:
        yield c


SCRAPE = {"Authorization": "Bearer scrape-secret"}


def test_metrics_are_refused_without_the_token_or_network(client):  # type: ignore[no-untyped-def]
    refused = client.get("/metrics")  # the admin's JWT is not the metrics token, and "testclient" is in no network
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", headers=SCRAPE)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert "anju_db_pool_in_use" in ok.text


def test_metrics_count_requests_fast_reads_and_errors_by_operation_type(client, caplog):  # type: ignore[no-untyped-def]
    before = _samples(client.get("/metrics", headers=SCRAPE).text)
    with caplog.at_level(logging.INFO, logger="anju.request"):
        for _ in range(3):  # the first through strawberry (which plans it), the repeats through the fast read path
            r = client.post("/graphql", json={"query": SITE_QUERY, "operationName": "Sites"})
            assert r.json() == {"data": {"relocationSites": {"nodes": [{"householdCount": 1447}]}}}
        bad = client.post("/graphql", json={"query": BAD_QUERY})
        assert bad.status_code == 200 and bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        stale = client.post(
            "/graphql",
            json={
                "query": "mutation Stale($v: Int!) { setMonitoringStatus(input: {householdId: 1, version: $v, "
                "category: null}) { household { id } } }",
                "variables": {"v": 987654},
            },
        )
        assert stale.json()["errors"][0]["extensions"]["code"] == "CONFLICT"
        client.get("/tiles")
    after = _samples(client.get("/metrics", headers=SCRAPE).text)

    def delta(name: str, **labels: str) -> float:
        return _sum(after, name, **labels) - _sum(before, name, **labels)

    total = "anju_http_requests_total"
    assert delta(total, route="/graphql", method="POST", status="200", operation="query") == 4
    assert delta(total, route="/graphql", method="POST", status="200", operation="mutation") == 1
    assert delta(total, route="/tiles", method="GET", status="200", operation="") == 1
    assert delta("anju_http_request_duration_seconds_count", route="/graphql", operation="query") == 4
    assert delta("anju_graphql_errors_total", code="BAD_USER_INPUT", operation="query") == 1
    assert delta("anju_graphql_errors_total", code="CONFLICT", operation="mutation") == 1
    # never the client's operation name as a label
    assert not any("Sites" in v or "Stale" in v for (_, labels) in after for _, v in labels)
    lines = [r for r in caplog.records if r.name == "anju.request" and getattr(r, "route", None) == "/graphql"]
    sites = [r for r in lines if r.operation_name == "Sites"]  # type: ignore[attr-defined]
    assert [bool(r.fast_read) for r in sites] == [False, True, True]  # type: ignore[attr-defined]
    assert all(r.operation_type == "query" and r.viewer == "t-admin" for r in sites)  # type: ignore[attr-defined]


def test_request_id_in_header_error_extensions_and_log_never_a_value(client, caplog):  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="anju"):
        r = client.post(
            "/graphql",
            json={
                "query": "query Named($n: ID!) { household(id: $n) { id } households(first: 100000) { nodes { id } } }",
                "variables": {"n": SECRET_VALUE},
            },
            headers={"X-Request-Id": "trace-abc.123"},
        )
        made = client.post("/graphql", json={"query": BAD_QUERY}, headers={"X-Request-Id": "not a valid id!"})
        unauth = client.post("/graphql", json={"query": SITE_QUERY}, headers={"Authorization": "Bearer nope"})
    assert r.headers["x-request-id"] == "trace-abc.123"
    assert r.json()["errors"][0]["extensions"]["requestId"] == "trace-abc.123"
    rid = made.headers["x-request-id"]
    assert len(rid) == 32 and rid != "not a valid id!" and made.json()["errors"][0]["extensions"]["requestId"] == rid
    assert unauth.status_code == 401 and unauth.json()["errors"][0]["extensions"]["requestId"] == unauth.headers["x-request-id"]
    line = next(x for x in caplog.records if getattr(x, "request_id", None) == "trace-abc.123")
    assert (line.operation_type, line.operation_name, line.viewer, line.status) == ("query", "Named", "t-admin", 200)  # type: ignore[attr-defined]
    assert line.duration_ms > 0  # type: ignore[attr-defined]
    for record in caplog.records:  # no log line carries a variable's value, in its message or its fields
        assert SECRET_VALUE not in record.getMessage() and SECRET_VALUE not in json.dumps(record.__dict__, default=str)


# --------------------------------------------------------------------------- server processes


def _env(settings: Any, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_") and k not in ("DATABASE_URL", "PORT", "HOST")}
    env["ANJU_ENV"] = "test"
    if database_url:
        env["DATABASE_URL"] = database_url
    elif settings.uses_local_db:
        env.update({"ANJU_LOCAL_DB__DATABASE": settings.local_db.database, "ANJU_LOCAL_DB__PORT": str(settings.local_db.port)})
    else:
        env["DATABASE_URL"] = settings.sqlalchemy_url()
    env.update(extra)
    return env


@contextlib.contextmanager
def _server(env: dict[str, str], *args: str, wait_healthy: bool = True) -> Any:
    """``anju serve ARGS`` on a free port (yields (process, port)); stopped with SIGTERM afterwards."""
    port = _free_port()
    log = open(Path(env.get("ANJU_TEST_LOG", os.devnull)), "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "serve", "--port", str(port), *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.time() + 90
        while wait_healthy:
            assert proc.poll() is None, "anju serve exited"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            assert time.time() < deadline, "anju serve did not answer /healthz"
            time.sleep(0.3)
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def test_two_workers_metrics_add_up_and_json_logs_carry_ids(settings, engine, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    log_file = tmp_path / "server.log"
    env = _env(
        settings,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ANJU_LOG__FORMAT="json",
        ANJU_TEST_LOG=str(log_file),
        ANJU_PLANNER__READ_CONNECTIONS="1",
    )
    ids = []
    with _server(env, "--workers", "2") as (proc, port):
        url = f"http://127.0.0.1:{port}"
        for i in range(40):  # a new connection each: the kernel spreads them over both workers
            with httpx.Client(timeout=30, headers=admin_headers) as c:
                q = SITE_QUERY if i % 4 else BAD_QUERY
                r = c.post(f"{url}/graphql", json={"query": q})
                assert r.status_code == 200
                ids.append(r.headers["x-request-id"])
        assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
        scraped = httpx.get(f"{url}/metrics", timeout=30)  # from 127.0.0.1: an allowed network by default
        assert scraped.status_code == 200
        samples = _samples(scraped.text)

        # The fast read path's own connections (one per worker here) in the pool gauges, summed over the workers:
        # with the site table locked, K repeated site reads hang in the fast path, one per worker in use, the rest
        # waiting in line; a worker's gauges are its own sample of at most a second ago.
        k = 8
        async with engine.connect() as locker:
            await locker.execute(text("LOCK TABLE relocation_site IN ACCESS EXCLUSIVE MODE"))
            async with httpx.AsyncClient(
                timeout=60, headers=admin_headers, limits=httpx.Limits(max_keepalive_connections=0)
            ) as c:
                blocked = [asyncio.create_task(c.post(f"{url}/graphql", json={"query": SITE_QUERY})) for _ in range(k)]
                await asyncio.sleep(2.5)
                held = _samples((await c.get(f"{url}/metrics")).text)
                await locker.rollback()
                answers = await asyncio.gather(*blocked)
    assert all(a.json() == {"data": {"relocationSites": {"nodes": [{"householdCount": 1447}]}}} for a in answers)
    blocked_ids = {a.headers["x-request-id"] for a in answers}
    assert _sum(samples, "anju_db_up") == 1  # whichever worker answered /healthz; the supervisor's unset gauge is no vote
    assert _sum(samples, "anju_http_requests_total", route="/graphql", method="POST", status="200") == 40
    assert _sum(samples, "anju_graphql_errors_total", code="BAD_USER_INPUT", operation="query") == 10
    assert _sum(samples, "anju_http_request_duration_seconds_count", route="/graphql", operation="query") == 40
    lines = [json.loads(x) for x in log_file.read_text(encoding="utf-8").splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("logger") == "anju.request" and x.get("route") == "/graphql"]
    assert sorted(x["request_id"] for x in requests) == sorted([*ids, *blocked_ids])
    assert len({x["pid"] for x in requests}) == 2, "both workers answered and logged"
    assert all(x["viewer"] == "t-admin" and x["operation_type"] == "query" and x["duration_ms"] > 0 for x in requests)
    assert sum(x.get("error_codes") == ["BAD_USER_INPUT"] for x in requests) == 10
    fast = [x for x in requests if x["request_id"] in blocked_ids]
    assert len(fast) == k and all(x.get("fast_read") for x in fast), fast
    workers = len({x["pid"] for x in fast})  # each worker that got one had its one read connection in use
    assert _sum(held, "anju_db_pool_in_use", pool="fast_read") == workers
    assert _sum(held, "anju_db_pool_waiting", pool="fast_read") == k - workers


def _recv_all(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_slow_and_stalled_clients_are_cut_off(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    env = _env(settings, ANJU_HEADER_TIMEOUT_SECONDS="1", ANJU_BODY_TIMEOUT_SECONDS="1")
    with _server(env, "--workers", "1") as (proc, port):
        silent, partial_headers, stalled_body = [], [], []
        opened = time.monotonic()
        for _ in range(40):
            silent.append(socket.create_connection(("127.0.0.1", port)))
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
            partial_headers.append(s)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(
                b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: "
                + admin_headers["Authorization"].encode()
                + b'\r\nContent-Length: 100\r\n\r\n{"query":'
            )
            stalled_body.append(s)
        # The first silent connection is held for the header timeout (1 s here), then closed by the server.
        assert _recv_all(silent[0], 10) == b""
        assert 0.9 < time.monotonic() - opened < 6
        server = psutil.Process(proc.pid)
        time.sleep(2)
        for s in silent + partial_headers:
            assert _recv_all(s, 5) == b""  # closed by the server, nothing said
        for s in stalled_body:
            answer = _recv_all(s, 5)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        for s in silent + partial_headers + stalled_body:
            s.close()
        held = sum(k.status == psutil.CONN_ESTABLISHED and k.laddr.port == port for k in server.net_connections("tcp"))
        assert held == 0
        r = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": SITE_QUERY}, headers=admin_headers, timeout=30)
        assert r.json() == {"data": {"relocationSites": {"nodes": [{"householdCount": 1447}]}}}


class CuttableProxy:
    """A TCP proxy to PostgreSQL in a thread: ``cut()`` drops every connection and refuses new ones, ``restore()``
    listens again on the same port (the network between the service and its database failing, for real)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.restore()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def restore(self) -> None:
        async def start() -> None:
            self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)

        self._run(start())

    def stall(self) -> None:
        """Drop every connection; new ones are accepted and never answered (a database host gone silent)."""
        self.cut()

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.add(writer)
            await reader.read()  # until the client gives up

        async def start() -> None:
            self.server = await asyncio.start_server(hold, "127.0.0.1", self.port, reuse_address=True)

        self._run(start())

    def cut(self) -> None:
        async def stop() -> None:
            assert self.server is not None
            self.server.close()
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()

        self._run(stop())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _proxied_url(settings: Any, port: int) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(settings.sqlalchemy_url()).set(drivername="postgresql", host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


async def test_database_outage_answers_503_quickly_and_recovers_without_losing_writes(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    target = make_url(settings.sqlalchemy_url())
    proxy = CuttableProxy((target.host or "127.0.0.1", target.port or 5432))
    env = _env(settings, _proxied_url(settings, proxy.port), ANJU_CONNECT_TIMEOUT_SECONDS="2")
    async with engine.connect() as c:
        hid, version = (await c.execute(text("SELECT id, version FROM household ORDER BY id LIMIT 1"))).one()
    write = (
        "mutation W($h: ID!, $v: Int!, $k: String) { recordIncomeLinkage(input: {householdId: $h, version: $v, "
        "mechanism: DIVIDEND, year: 2023, amount: 321.5, idempotencyKey: $k}) { incomeLinkage { id } household { version } } }"
    )
    try:
        with _server(env, "--workers", "1") as (proc, port):
            url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, headers=admin_headers, timeout=60) as c:
                r = await c.post("/graphql", json={"query": SITE_QUERY})
                assert r.status_code == 200
                acked = await c.post("/graphql", json={"query": write, "variables": {"h": str(hid), "v": version}})
                acked_id = int(acked.json()["data"]["recordIncomeLinkage"]["incomeLinkage"]["id"])
                version += 1

                # A GraphQL read and a tile both blocked on a lock when the database goes away mid-statement.
                async with engine.connect() as locker:
                    await locker.execute(text("LOCK TABLE household IN ACCESS EXCLUSIVE MODE"))
                    blocked_read = asyncio.create_task(
                        c.post("/graphql", json={"query": "{ households(first: 3) { nodes { id code } } }"})
                    )
                    blocked_tile = asyncio.create_task(c.get("/tiles/10/803/428.mvt"))
                    await asyncio.sleep(1.5)
                    proxy.cut()
                    read, tile = await blocked_read, await blocked_tile
                    await locker.rollback()
                assert read.status_code == 503 and read.json()["errors"][0]["extensions"]["code"] == "INTERNAL", read.text
                assert tile.status_code == 503 and tile.headers["content-type"] == "application/json", tile.text
                assert tile.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
                assert "Traceback" not in tile.text

                # While it is down: every request answers 503 INTERNAL at once, /healthz says so.
                for body in ({"query": SITE_QUERY}, {"query": write, "variables": {"h": str(hid), "v": version}}):
                    started = time.monotonic()
                    r = await c.post("/graphql", json=body)
                    assert time.monotonic() - started < 5
                    assert r.status_code == 503 and r.json()["errors"][0]["extensions"]["code"] == "INTERNAL", r.text
                health = await c.get("/healthz")
                assert health.status_code == 503 and health.json()["database"] == "unreachable"

                proxy.restore()
                back = time.monotonic()
                while (await c.post("/graphql", json={"query": SITE_QUERY})).status_code != 200:
                    assert time.monotonic() - back < 5, "not recovered within 5 s"
                    await asyncio.sleep(0.1)
                for _ in range(30):  # no stale pooled connection is left to fail a later request
                    r = await c.post("/graphql", json={"query": SITE_QUERY})
                    assert r.status_code == 200, r.text
                assert (await c.get("/healthz")).status_code == 200
    finally:
        proxy.close()
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM income_linkage WHERE id = :i"), {"i": acked_id}) == 1
        assert await conn.scalar(text("SELECT version FROM household WHERE id = :h"), {"h": hid}) == version


async def test_pool_waits_long_while_the_database_is_up_and_not_at_all_while_it_is_down(settings, engine):  # type: ignore[no-untyped-def]
    """Two waits told apart (anju.db.ServicePool): a request in line for a busy pool's connection waits past the connect
    timeout while the database answers; once the database goes silent, those in line and those arriving give up within
    the connect timeout, not after the pool wait; when it answers again the pool serves at once."""
    from sqlalchemy.engine import make_url

    from resolvers.errors import is_unavailable

    target = make_url(settings.sqlalchemy_url())
    proxy = CuttableProxy((target.host or "127.0.0.1", target.port or 5432))
    s = settings.model_copy(
        update={
            "database_url": _proxied_url(settings, proxy.port),
            "pool_size": 1,
            "max_overflow": 1,
            "connect_timeout_seconds": 1.0,
            "pool_wait_seconds": 30.0,
        }
    )
    eng = db.create_engine(s)

    async def hold(seconds: float) -> None:
        async with eng.connect() as conn:
            await conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})

    async def one() -> float:
        started = time.monotonic()
        async with eng.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM household")) == 1573
        return time.monotonic() - started

    try:
        # Up and busy: both connections are held for 2.5 s; the third request waits its turn (past the 1 s connect
        # timeout) and is served.
        holders = [asyncio.create_task(hold(2.5)) for _ in range(2)]
        await asyncio.sleep(0.5)
        waited = await one()
        await asyncio.gather(*holders)
        assert waited > 1.5

        # Down (silent): two requests are stuck connecting, six wait in line; all eight answer "unavailable" once the
        # first connect attempt times out (1 s), long before the 30 s pool wait.
        await eng.dispose()
        proxy.stall()
        started = time.monotonic()
        results = await asyncio.gather(*(one() for _ in range(8)), return_exceptions=True)
        took = time.monotonic() - started
        assert all(isinstance(r, Exception) and is_unavailable(r) for r in results), results
        assert took < 10, took
        started = time.monotonic()  # and a request arriving while it is down does not wait either
        with pytest.raises(Exception) as late:
            await one()
        assert is_unavailable(late.value) and time.monotonic() - started < 5

        proxy.cut()
        proxy.restore()  # answering again: served at once, the pool up
        assert await one() < 5
        assert not eng.pool.outage.down  # type: ignore[attr-defined]
    finally:
        await eng.dispose()
        proxy.close()


# --------------------------------------------------------------------------- idempotency, conflicting edits


async def _household(engine: Any) -> tuple[int, int, int]:
    async with engine.connect() as c:
        row = (
            await c.execute(
                text(
                    "SELECT h.id, h.version, min(m.id) FROM household h JOIN member m ON m.household_id = h.id "
                    "GROUP BY h.id ORDER BY h.id DESC LIMIT 1"
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


EMPLOY = """mutation E($m: ID!, $v: Int!, $k: String, $wage: Decimal) {
  recordEmployment(input: {memberId: $m, version: $v, channel: PUBLIC_WELFARE_POST, employerName: "公益岗 test",
    startOn: "2024-01-02", stable: true, monthlyWage: $wage, idempotencyKey: $k}) { employment { id } household { version } } }"""


async def test_idempotency_key_answers_the_first_result(gql, engine):  # type: ignore[no-untyped-def]
    hid, version, member = await _household(engine)

    async def employments() -> int:
        async with engine.connect() as c:
            return int(await c.scalar(text("SELECT count(*) FROM employment WHERE member_id = :m"), {"m": member}))

    before = await employments()
    key = f"emp-{uuid.uuid4()}"
    first = await gql(EMPLOY, m=str(member), v=version, k=key, wage="1800")
    assert first.errors is None, first.errors
    again = await gql(EMPLOY, m=str(member), v=version, k=key, wage="1800")  # the retry of a lost answer
    assert again.errors is None, again.errors
    assert again.data["recordEmployment"]["employment"]["id"] == first.data["recordEmployment"]["employment"]["id"]
    assert await employments() == before + 1
    other = await gql(EMPLOY, m=str(member), v=version + 1, k=key, wage="2500")  # same key, another request
    assert other.errors[0].extensions == {"code": "CONFLICT", "field": "idempotencyKey"}
    bad = await gql(EMPLOY, m=str(member), v=version + 1, k="short", wage="1")
    assert bad.errors[0].extensions["field"] == "idempotencyKey"
    assert await employments() == before + 1

    # Twenty racing copies of one new request: one writes, all answer its id.
    key = f"emp-{uuid.uuid4()}"
    results = await asyncio.gather(*(gql(EMPLOY, m=str(member), v=version + 1, k=key, wage="900") for _ in range(20)))
    assert all(r.errors is None for r in results), [r.errors for r in results if r.errors]
    assert len({r.data["recordEmployment"]["employment"]["id"] for r in results}) == 1
    assert await employments() == before + 2
    async with engine.connect() as c:
        assert await c.scalar(text("SELECT count(*) FROM idempotency_key WHERE key = :k"), {"k": key}) == 1


async def test_idempotency_keys_are_per_viewer_and_work_for_county_officers(schema, sm, settings, engine):  # type: ignore[no-untyped-def]
    officer = Viewer(None, "t-officer", Role.COUNTY_OFFICER, ("513432",))
    hid, version, member = await _household(engine)
    key = f"emp-{uuid.uuid4()}"

    async def run(viewer: Viewer, v: int) -> Any:
        return await schema.execute(
            EMPLOY,
            variable_values={"m": str(member), "v": v, "k": key, "wage": "100"},
            context_value=Context(sessionmaker=sm, settings=settings, viewer=viewer),
        )

    first = await run(officer, version)
    assert first.errors is None, first.errors
    assert (await run(officer, version)).data == first.data
    admin = Viewer(None, "t-admin", Role.ADMIN)
    second = await run(admin, version + 1)  # the same key of another user is another request
    assert second.errors is None, second.errors
    assert second.data["recordEmployment"]["employment"]["id"] != first.data["recordEmployment"]["employment"]["id"]


LINKAGE = """mutation L($h: ID!, $v: Int!, $a: Decimal!) { recordIncomeLinkage(input: {householdId: $h, version: $v,
  mechanism: DIVIDEND, year: 2022, amount: $a}) { incomeLinkage { id amount } household { version } } }"""


async def test_concurrent_conflicting_edits_each_applied_or_conflict_none_lost(gql, engine):  # type: ignore[no-untyped-def]
    n = 200  # bench/load.py --conflicts runs 1,000 over HTTP
    hid, v0, _ = await _household(engine)
    async with engine.connect() as c:
        existing = set(await c.scalars(text("SELECT id FROM income_linkage WHERE household_id = :h"), {"h": hid}))
    # Each edit claims a version between v0 and v0+24: an edit applies when its version is current when it runs.
    results = await asyncio.gather(*(gql(LINKAGE, h=str(hid), v=v0 + i % 25, a=f"{i + 1}.00") for i in range(n)))
    applied = [r for r in results if r.errors is None]
    conflicts = [r for r in results if r.errors is not None]
    assert all(r.errors[0].extensions["code"] == "CONFLICT" for r in conflicts), [r.errors for r in conflicts][:3]
    assert len(applied) + len(conflicts) == n and applied
    versions = sorted(r.data["recordIncomeLinkage"]["household"]["version"] for r in applied)
    assert versions == list(range(v0 + 1, v0 + 1 + len(applied)))
    async with engine.connect() as c:
        final = await c.scalar(text("SELECT version FROM household WHERE id = :h"), {"h": hid})
        rows = dict(
            (
                await c.execute(
                    text("SELECT id, amount::text FROM income_linkage WHERE household_id = :h AND NOT (id = ANY(:e))"),
                    {"h": hid, "e": list(existing)},
                )
            ).all()
        )
    assert final == v0 + len(applied)
    assert {k: Decimal(v) for k, v in rows.items()} == {
        int(r.data["recordIncomeLinkage"]["incomeLinkage"]["id"]): Decimal(
            str(r.data["recordIncomeLinkage"]["incomeLinkage"]["amount"])
        )
        for r in applied
    }


# --------------------------------------------------------------------------- backup and restore


async def _drop(settings: Any, name: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as c:
            await c.execute(text(f"DROP DATABASE IF EXISTS {db.check_database_name(name)} WITH (FORCE)"))
    finally:
        await admin.dispose()


FIGURES = """{ relocationSites(filter: {name: "彝欣社区"}) { nodes { householdCount population
    employmentCoverage(asOf: "2024-04-13") { households householdsWithLaborForce householdsCovered coverageRate
      zeroEmploymentHouseholds employedPersons stablyEmployedPersons byChannel { channel count } } } }
  adminArea(code: "513432") { employmentCoverage(asOf: "2024-04-13") { coverageRate households } } }"""
COUNTS = (
    "SELECT (SELECT count(*) FROM household), (SELECT count(*) FROM member), (SELECT count(*) FROM employment), "
    "(SELECT count(*) FROM income_linkage), (SELECT count(*) FROM relocation_site), (SELECT count(*) FROM facility), "
    "(SELECT count(*) FROM audit_log), (SELECT count(*) FROM app_user), (SELECT version_num FROM alembic_version)"
)


async def test_backup_restored_into_a_fresh_database_gives_the_same_figures(schema, settings, engine, tmp_path):  # type: ignore[no-untyped-def]
    archive = tmp_path / "anju.dump"
    env = _env(settings)
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "backup", str(archive)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    keys_file = tmp_path / "anju.dump.keys.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    saved = json.loads(keys_file.read_text(encoding="utf-8"))
    from anju.auth import keys

    assert (
        saved["fingerprint"] == key_fingerprint(keys(settings).id_number_key) == key_fingerprint(saved["id_number_key"].encode())
    )
    assert saved["id_number_key"].encode() not in archive.read_bytes()

    target = "anju_restore_test"
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "restore", str(archive), "--database", target, "--keys", str(keys_file), "--replace"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run(
        [sys.executable, "-m", "anju.cli", "restore", str(archive), "--database", target],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode != 0 and "exists" in again.stdout + again.stderr  # never over an existing database by accident

    restored = db.create_engine(settings, target)
    try:
        async with engine.connect() as a, restored.connect() as b:
            assert (await a.execute(text(COUNTS))).one() == (await b.execute(text(COUNTS))).one()
        admin = Viewer(None, "t-admin", Role.ADMIN)
        figures = []
        for eng in (engine, restored):
            r = await schema.execute(
                FIGURES, context_value=Context(sessionmaker=db.create_sessionmaker(eng), settings=settings, viewer=admin)
            )
            assert r.errors is None, r.errors
            figures.append(json.dumps(r.data, sort_keys=True, default=str))
        assert figures[0] == figures[1]
        assert '"householdCount": 1447' in figures[1]
        officer = Viewer(None, "t-officer", Role.COUNTY_OFFICER, ("513432",))  # the scope roles and policies came back too
        r = await schema.execute(
            "{ households(first: 1) { totalCount } }",
            context_value=Context(sessionmaker=db.create_sessionmaker(restored), settings=settings, viewer=officer),
        )
        assert r.errors is None and r.data["households"]["totalCount"] > 0
    finally:
        await restored.dispose()
        await _drop(settings, target)
    wrong = tmp_path / "wrong.keys.json"
    wrong.write_text(json.dumps({"fingerprint": key_fingerprint(b"another key"), "id_number_key": "another key"}))
    refused = subprocess.run(
        [sys.executable, "-m", "anju.cli", "restore", str(archive), "--database", target, "--keys", str(wrong), "--replace"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "ANJU_PRIVACY__ID_NUMBER_KEY" in refused.stdout + refused.stderr
