"""The project-local PostGIS cluster (``.pgdata/``, 127.0.0.1:55432) for ``make run`` / ``make test``.

Used only when ``DATABASE_URL`` is unset. PostgreSQL and PostGIS come from Debian's packages
(``postgresql`` + ``postgresql-<major>-postgis-3``); as root they are installed when missing,
otherwise the error says what to install. ``initdb`` refuses to run as root, so as root the
cluster is owned and run by the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from anju.settings import LocalDbSettings

log = logging.getLogger("anju.localdb")

DEFAULT_MAJOR = "15"
SERVER_OPTIONS = (
    "-c listen_addresses={host} -p {port} -c unix_socket_directories='' "
    "-c synchronous_commit=off -c shared_buffers=256MB -c work_mem=32MB "
    "-c max_connections=200 -c max_wal_size=4GB -c wal_compression=lz4"
)
"""The local cluster's server settings. ``max_wal_size`` 4 GB and ``wal_compression``: a Sichuan-scale roster import
writes ≈ 2 GB of WAL; with the default 1 GB a checkpoint started every 16–28 s during it, each followed by full-page
images of every page touched again (PostgreSQL's "Populating a Database" advice; README, Operating, says the same for a
production server)."""


class LocalDbError(RuntimeError):
    """The local cluster cannot be installed, initialised or started; the message says why."""


def _bindir() -> Path | None:
    """Newest installed ``/usr/lib/postgresql/<major>/bin`` that has ``initdb``, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _major(bindir: Path) -> str:
    return bindir.parent.name


def _postgis_present(major: str) -> bool:
    return Path(f"/usr/share/postgresql/{major}/extension/postgis.control").exists()


def ensure_installed() -> Path:
    """Return the server's bin directory, installing PostgreSQL + PostGIS from Debian as root.

    Raises:
        LocalDbError: packages are missing and this is not root (names the packages to install),
            or apt-get failed.
    """
    bindir = _bindir()
    major = _major(bindir) if bindir else DEFAULT_MAJOR
    if bindir and _postgis_present(major):
        return bindir
    packages = ["postgresql-common", f"postgresql-{major}", f"postgresql-{major}-postgis-3"]
    if os.geteuid() != 0:
        raise LocalDbError(
            "PostgreSQL/PostGIS are not installed. Install them with:\n"
            f"  sudo apt-get install -y {' '.join(packages)}\n"
            "or set DATABASE_URL to an existing PostGIS database."
        )
    log.warning("installing %s from Debian's packages", " ".join(packages))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise LocalDbError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    bindir = _bindir()
    if not bindir or not _postgis_present(_major(bindir)):
        raise LocalDbError("PostgreSQL/PostGIS still missing after apt-get install")
    return bindir


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a cluster command, as the ``postgres`` user when we are root."""
    if _as_root():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LocalDbError(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return done


def data_dir(settings: LocalDbSettings) -> Path:
    """Where the cluster lives.

    ``.pgdata/`` in the project, or, when the ``postgres`` user cannot reach the project folder (root-only parent folders), a
    folder under ``/var/lib/anju/`` named after the project path.
    """
    wanted = settings.data_dir
    if not _as_root():
        return wanted
    reach = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(wanted.parent)])
    if reach.returncode == 0:
        return wanted
    tag = hashlib.sha1(str(wanted).encode()).hexdigest()[:12]
    return Path("/var/lib/anju") / tag / "pgdata"


def _initdb(bindir: Path, pgdata: Path, settings: LocalDbSettings) -> None:
    pgdata.mkdir(parents=True, exist_ok=True)
    if _as_root():
        shutil.chown(pgdata, "postgres", "postgres")
    os.chmod(pgdata, 0o700)
    with tempfile.NamedTemporaryFile("w", delete=False, prefix="anju-pw-") as pw:
        pw.write(settings.password.get_secret_value() + "\n")
    os.chmod(pw.name, 0o644)
    try:
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                settings.user,
                f"--pwfile={pw.name}",
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
    finally:
        os.unlink(pw.name)


def is_running(settings: LocalDbSettings) -> bool:
    """True when the project's cluster answers ``pg_ctl status``."""
    bindir = _bindir()
    pgdata = data_dir(settings)
    if not bindir or not (pgdata / "PG_VERSION").exists():
        return False
    return _run([str(bindir / "pg_ctl"), "status", "-D", str(pgdata)], check=False).returncode == 0


def start(settings: LocalDbSettings) -> Path:
    """Install if needed, initialise if needed, and start the cluster; idempotent.

    Returns:
        The cluster's data directory.

    Raises:
        LocalDbError: install, initdb or start failed (the server log's tail is in the message).
    """
    bindir = ensure_installed()
    pgdata = data_dir(settings)
    if not (pgdata / "PG_VERSION").exists():
        log.warning("initialising a local PostGIS cluster in %s", pgdata)
        _initdb(bindir, pgdata, settings)
    if is_running(settings):
        return pgdata
    opts = SERVER_OPTIONS.format(host=settings.host, port=settings.port)
    logfile = pgdata / "server.log"
    done = _run(
        [str(bindir / "pg_ctl"), "start", "-D", str(pgdata), "-l", str(logfile), "-w", "-t", "120", "-o", opts], check=False
    )
    if done.returncode != 0:
        tail = ""
        if logfile.exists():
            tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
        hint = ""
        if "already in use" in tail:  # the server's own log line; pg_ctl reports only "could not start server"
            hint = (
                f"\nport {settings.port} is taken by another server: put ANJU_LOCAL_DB__PORT=<a free port> "
                "in the checkout's .env and run again"
            )
        raise LocalDbError(
            f"could not start PostgreSQL on {settings.host}:{settings.port}:\n{done.stdout}{done.stderr}\n{tail}{hint}"
        )
    log.warning("local PostGIS listening on %s:%s", settings.host, settings.port)
    return pgdata


def stop(settings: LocalDbSettings) -> bool:
    """Stop the cluster (fast shutdown). Returns False when it was not running."""
    bindir = _bindir()
    if not bindir or not is_running(settings):
        return False
    _run([str(bindir / "pg_ctl"), "stop", "-D", str(data_dir(settings)), "-m", "fast", "-w"])
    return True
