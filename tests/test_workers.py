"""`anju serve --workers N`: real worker processes sharing one port, and a graceful SIGTERM, checked end to end in a
subprocess against the test database (no mocks: the processes and connections are the operating system's)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import httpx2 as httpx
import psutil

from tests.test_cli import _env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(settings, *args: str) -> tuple[subprocess.Popen[str], int]:  # type: ignore[no-untyped-def]
    """`anju serve ARGS` on a free port against the test database, once /healthz answers 200."""
    port = _free_port()
    env = _env(settings)
    if settings.uses_local_db:
        env["ANJU_LOCAL_DB__DATABASE"] = settings.local_db.database
    else:
        env["DATABASE_URL"] = settings.sqlalchemy_url()
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("anju serve did not answer /healthz: " + proc.communicate()[0][-3000:])


def _workers(server: psutil.Process, port: int) -> dict[int, psutil.Process]:
    """The server's child processes listening on ``port`` (uvicorn's workers), by pid."""
    return {
        c.pid: c
        for c in server.children()
        if any(k.status == psutil.CONN_LISTEN and k.laddr.port == port for k in c.net_connections("tcp"))
    }


def _connections_by_worker(workers: dict[int, psutil.Process], port: int) -> dict[int, int]:
    """How many established connections to ``port`` each worker holds."""
    return {
        pid: sum(k.status == psutil.CONN_ESTABLISHED and k.laddr.port == port for k in w.net_connections("tcp"))
        for pid, w in workers.items()
    }


def test_two_workers_share_the_port_and_sigterm_lets_a_request_finish(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    proc, port = _serve(settings, "--workers", "2")
    try:
        server = psutil.Process(proc.pid)
        workers = _workers(server, port)
        assert len(workers) == 2, [c.cmdline() for c in server.children()]
        # New connections, each kept open after a /healthz answer, until both workers hold some: the kernel hands
        # connections of the one listening socket to whichever worker accepts first.
        clients: list[httpx.Client] = []
        held: dict[int, int] = {}
        try:
            for _ in range(200):
                client = httpx.Client(timeout=10)
                clients.append(client)
                assert client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                held = _connections_by_worker(workers, port)
                if all(held.values()):
                    break
            assert all(held.values()), f"one worker answered every connection: {held}"
            # Every connection keeps answering (each served by the worker holding it).
            for client in clients:
                assert client.get(f"http://127.0.0.1:{port}/healthz").json()["database"] == "ok"
        finally:
            for client in clients:
                client.close()

        # Graceful shutdown: a GraphQL request whose body is only half sent when SIGTERM arrives still gets its answer.
        body = json.dumps({"query": '{ relocationSites(filter: {name: "彝欣社区"}) { nodes { householdCount } } }'}).encode()
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: {admin_headers['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head + body[:10])
            time.sleep(1)  # the worker has read the headers and waits for the rest of the body
            proc.send_signal(signal.SIGTERM)
            time.sleep(2)  # the supervisor has passed SIGTERM on to the workers, which stopped accepting
            assert proc.poll() is None  # still waiting for the request in flight
            sock.sendall(body[10:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 200 OK", answer[:500]
        assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {"data": {"relocationSites": {"nodes": [{"householdCount": 1447}]}}}
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, out[-3000:]
        assert out.count("Finished server process") == 2, out[-3000:]
        assert not any(psutil.pid_exists(pid) for pid in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_one_worker_serves_in_its_own_process(settings, engine):  # type: ignore[no-untyped-def]
    proc, port = _serve(settings, "--workers", "1")
    try:
        server = psutil.Process(proc.pid)
        assert not _workers(server, port)  # no worker processes: this process listens and answers
        assert any(k.status == psutil.CONN_LISTEN and k.laddr.port == port for k in server.net_connections("tcp"))
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 0, out[-3000:]
        assert "1 worker process)" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


async def test_worker_connections_do_not_wait_for_nagle():  # type: ignore[no-untyped-def]
    """uvicorn binds the workers' socket as socket.socket(AF_INET) (protocol 0): asyncio then leaves TCP_NODELAY off on
    accepted connections and each response waits for the client's delayed ACK. anju.serving's protocol sets it."""
    import asyncio

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from anju.serving import NoDelayHttpToolsProtocol

    config = Config(app=lambda scope, receive, send: None)
    config.load()
    listener = socket.socket(family=socket.AF_INET)  # as uvicorn.Config.bind_socket makes it for workers
    listener.bind(("127.0.0.1", 0))
    made: list[NoDelayHttpToolsProtocol] = []

    def protocol() -> NoDelayHttpToolsProtocol:
        made.append(NoDelayHttpToolsProtocol(config=config, server_state=ServerState(), app_state={}))
        return made[-1]

    server = await asyncio.get_running_loop().create_server(protocol, sock=listener)
    try:
        _, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(100):
            if made:
                break
            await asyncio.sleep(0.05)
        accepted = made[0].transport.get_extra_info("socket")
        assert accepted.proto == 0  # what asyncio sees: not recognisably TCP, so it sets no TCP_NODELAY itself
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        made[0].transport.close()
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
