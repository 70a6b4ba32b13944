"""The console script as `make run` uses it: `anju up` prepares (migrate + demo seed, idempotent)
and serves; checked end to end in subprocesses against a scratch database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from anju import db

NAME = "anju_test_cli"


def _env(settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANJU_") and k not in ("DATABASE_URL", "PORT", "HOST")}
    if settings.uses_local_db:
        env.update({"ANJU_LOCAL_DB__DATABASE": NAME, "ANJU_LOCAL_DB__PORT": str(settings.local_db.port)})
    else:
        env["DATABASE_URL"] = settings.sqlalchemy_url(NAME)
    return env


def _anju(settings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "anju.cli", *args], env=_env(settings), capture_output=True, text=True, timeout=timeout
    )


async def test_up_prepares_idempotently_and_serves(settings):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    first = _anju(settings, "up", "--no-serve")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "demo dataset loaded" in first.stdout and "1573 households" in first.stdout
    header = next(line for line in first.stdout.splitlines() if line.startswith("GraphiQL → Headers: "))
    auth = json.loads(header.split(": ", 1)[1])  # the line a newcomer pastes into GraphiQL
    again = _anju(settings, "up", "--no-serve")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already loaded; nothing written" in again.stdout

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**_env(settings), "PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "anju.cli", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError("anju up did not serve")
        query = {"query": '{ relocationSites(filter: {name: "彝欣社区"}) { nodes { householdCount population } } }'}
        r = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers=auth)
        assert r.json() == {"data": {"relocationSites": {"nodes": [{"householdCount": 1447, "population": 7518}]}}}
        # `anju token NAME` prints the token alone; without any token: 401 UNAUTHENTICATED
        tok = _anju(settings, "token", "demo-admin")
        assert tok.returncode == 0 and len(tok.stdout.strip().split()) == 1
        r = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers={"Authorization": f"Bearer {tok.stdout.strip()}"})
        assert r.json()["data"]["relocationSites"]["nodes"][0]["householdCount"] == 1447
        r = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query)
        assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # a disabled user's tokens stop working at once; enabled again, they work
        disabled = _anju(settings, "user", "disable", "demo-admin")
        assert disabled.returncode == 0 and disabled.stderr == ""  # a command's stderr holds no pool INFO lines
        r = httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers=auth)
        assert r.status_code == 401
        assert _anju(settings, "user", "enable", "demo-admin").returncode == 0
        assert httpx.post(f"http://127.0.0.1:{port}/graphql", json=query, headers=auth).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        output = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    # the temporary metrics directory the banner names is gone once the server stopped cleanly
    metrics = Path(output.split("metrics files in ", 1)[1].split(";", 1)[0])
    assert metrics.name.startswith("anju-metrics-") and not metrics.exists()
