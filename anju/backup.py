"""``anju backup`` / ``anju restore``: the database as a pg_dump custom-format archive, and its keys beside it.

A backup is two files:

- ``FILE`` — ``pg_dump --format=custom`` of the application database (schema, data, row-level security policies, the
  ``alembic_version`` row). It holds member ID numbers only as HMAC-SHA256 hashes plus their last 4 characters.
- ``FILE.keys.json`` — written separately (mode 0600), the key those hashes were made with (``privacy.id_number_key``,
  from ``ANJU_PRIVACY__ID_NUMBER_KEY`` or, outside production, ``.anju/secrets.json``) and its SHA-256 fingerprint.
  Without the same key a restored database still answers every figure, but a recorded ID number can no longer be matched
  (duplicates are not found, imports cannot recognise members). Keep this file apart from the archive (a different
  store, or encrypted); the archive alone reveals no ID number.

``restore`` creates the target database (refusing an existing one unless told to replace it), the two scope roles the
policies name (cluster-wide, so a new server lacks them), then runs ``pg_restore``; given the keys file it checks the
key the service is configured with is the backup's (by fingerprint) and says what to set when it is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from anju import localdb
from anju.auth import keys
from anju.db import create_database
from anju.settings import Settings
from resolvers.access import DB_ROLES


class BackupError(RuntimeError):
    """pg_dump/pg_restore failed or the keys do not match; the message says why (never a password)."""


def _tool(settings: Settings, name: str) -> str:
    """``pg_dump``/``pg_restore``: the local cluster's own (same major), else the one on PATH."""
    bindir = localdb._bindir() if settings.uses_local_db else None
    if bindir is not None and (bindir / name).exists():
        return str(bindir / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL client (postgresql-client) of the server's version")
    return found


def _conninfo(settings: Settings, database: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Libpq options for the database (host, port, user, name) and the environment carrying its password (PGPASSWORD)."""
    url = make_url(settings.sqlalchemy_url(database))
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--username", url.username or "postgres"]
    env = {**os.environ, "PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "10"}
    return [*args, "--dbname", url.database or ""], env


def key_fingerprint(key: bytes) -> str:
    """SHA-256 of the ID-number key, hex (names the key without revealing it)."""
    return hashlib.sha256(key).hexdigest()


def keys_path(archive: Path) -> Path:
    """Where the keys of ``archive`` are written: ``<archive>.keys.json``."""
    return archive.with_name(archive.name + ".keys.json")


@dataclass(frozen=True)
class BackupResult:
    """The files a backup wrote and the fingerprint of its ID-number key."""

    archive: Path
    keys_file: Path
    fingerprint: str


def backup(settings: Settings, archive: Path) -> BackupResult:
    """Dump the application database to ``archive`` (custom format) and its ID-number key to ``archive.keys.json`` (0600).

    Raises:
        BackupError: pg_dump failed (its message, without the password), or the key is not configured.
    """
    key = keys(settings).id_number_key
    archive.parent.mkdir(parents=True, exist_ok=True)
    conn, env = _conninfo(settings)
    done = subprocess.run(
        [_tool(settings, "pg_dump"), *conn, "--format=custom", "--file", str(archive)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[-2000:]}")
    path = keys_path(archive)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(
            {
                "id_number_key": key.decode(),
                "fingerprint": key_fingerprint(key),
                "archive": archive.name,
                "note": "ANJU_PRIVACY__ID_NUMBER_KEY of this backup; keep it apart from the archive",
            },
            f,
            indent=2,
        )
    return BackupResult(archive, path, key_fingerprint(key))


async def _prepare(settings: Settings, database: str, replace: bool) -> None:
    """Create ``database`` (empty; replaced when ``replace``) and the scope roles when missing."""
    try:
        await create_database(settings, database, drop_first=replace, exists_ok=False)
    except FileExistsError:
        raise BackupError(f"database {database} exists; restore into a new one, or pass --replace to drop it first") from None
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for role in DB_ROLES.values():  # cluster-wide: the policies and grants of the archive name them
                await conn.execute(
                    text(
                        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
                        f"CREATE ROLE {role} NOLOGIN NOINHERIT; END IF; END $$"
                    )
                )
                await conn.execute(text(f"GRANT {role} TO CURRENT_USER"))
    finally:
        await admin.dispose()


def check_keys(settings: Settings, keys_file: Path) -> str:
    """The backup's key fingerprint, when the service's configured ID-number key is that key.

    Raises:
        BackupError: the keys differ (names what to set), or the file is not a keys file.
    """
    try:
        saved = json.loads(keys_file.read_text(encoding="utf-8"))
        fingerprint = str(saved["fingerprint"])
    except (OSError, ValueError, KeyError) as exc:
        raise BackupError(f"{keys_file}: not a keys file of `anju backup` ({type(exc).__name__})") from None
    current = key_fingerprint(keys(settings).id_number_key)
    if current != fingerprint:
        raise BackupError(
            f"the configured ID-number key (fingerprint {current[:12]}…) is not the backup's ({fingerprint[:12]}…): set "
            f"ANJU_PRIVACY__ID_NUMBER_KEY to the id_number_key in {keys_file} before serving the restored database"
        )
    return fingerprint


def restore(settings: Settings, archive: Path, database: str, *, replace: bool = False) -> None:
    """Restore ``archive`` into a new ``database`` on the configured server.

    Raises:
        BackupError: the database exists (without ``replace``), or pg_restore failed.
    """
    import asyncio

    if not archive.is_file():
        raise BackupError(f"{archive}: no such archive")
    asyncio.run(_prepare(settings, database, replace))
    conn, env = _conninfo(settings, database)
    done = subprocess.run(
        [_tool(settings, "pg_restore"), *conn, "--exit-on-error", "--no-owner", str(archive)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()[-2000:]}")
