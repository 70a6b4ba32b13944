"""``make ogc-validate``: the independent OGC API Features validator (``ogctests`` from PyPI) against Anju's ``/ogc``.

Prepares the demo database (``anju up --no-serve``: migrations, demo data), makes an admin ``ogc-validator`` and a
token, serves the app with uvicorn on a free local port, runs ``ogctests``' Part 1 Core suite (``features/core``) from
its own virtualenv (``.venv-ogc``: ogctests pins httpx < 0.28 and pulls geopandas/pyarrow, which stay out of the
project's environment), then stops the server it started. ``--scope features/filtering`` runs the validator's Part 3
suite instead (see README: it cannot pass against any server in ogctests 0.1.15). Exit status: the validator's.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OGC_PYTHON = ROOT / ".venv-ogc" / "bin" / "python"
RUNNER = """
import sys, httpx
from ogctests.main import run_ogctests
url, token, scope, ini = sys.argv[1:5]
client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
flags = ["-c", ini, "-q", "-rA", "--tb=short", "-p", "no:cacheprovider"]  # its own empty config, not the project's
sys.exit(run_ogctests(scope, instance_url=url, flags=flags, test_client=client))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scope", default="features/core")
    args = parser.parse_args()
    anju = str(BIN / "anju")
    subprocess.run([anju, "up", "--no-serve"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    users = subprocess.run([anju, "user", "list"], check=True, cwd=ROOT, capture_output=True, text=True).stdout
    if "ogc-validator" not in users:
        subprocess.run([anju, "user", "add", "ogc-validator", "--role", "admin"], check=True, cwd=ROOT)
    token = subprocess.run([anju, "token", "ogc-validator"], check=True, cwd=ROOT, capture_output=True, text=True).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([anju, "serve", "--port", str(port)], cwd=ROOT, env={**os.environ, "PORT": str(port)})
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310 - local
                break
            except OSError:
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/ogc"
        with tempfile.TemporaryDirectory() as tmp:
            ini = Path(tmp) / "pytest.ini"
            ini.write_text("[pytest]\n", encoding="utf-8")
            return subprocess.run([str(OGC_PYTHON), "-c", RUNNER, url, token, args.scope, str(ini)], cwd=tmp).returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
