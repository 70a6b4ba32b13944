"""``anju`` command line: local PostGIS, migrations, demo data, server."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import typer

from anju import db, localdb
from anju.settings import Settings

app = typer.Typer(help="Anju (安居): relocation-site GraphQL service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The project-local PostGIS cluster (used when DATABASE_URL is unset).", no_args_is_help=True)
app.add_typer(db_app, name="db")
log = logging.getLogger("anju")


def _settings() -> Settings:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return Settings()


def _fail(msg: str) -> None:
    typer.secho(msg, err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


def ensure_server(settings: Settings) -> None:
    """Start the local cluster when ``DATABASE_URL`` is unset; otherwise use that server as it is."""
    if not settings.uses_local_db:
        return
    try:
        localdb.start(settings.local_db)
    except localdb.LocalDbError as exc:
        _fail(str(exc))


@db_app.command("start")
def db_start() -> None:
    """Install (as root, from Debian) if needed, initialise and start the local PostGIS."""
    s = _settings()
    if not s.uses_local_db:
        _fail("DATABASE_URL is set: Anju uses that server and manages no local cluster.")
    ensure_server(s)
    typer.echo(f"PostGIS running: {db.safe_url(s)} (data: {localdb.data_dir(s.local_db)})")


@db_app.command("destroy")
def db_destroy() -> None:
    """Stop the local PostGIS and delete its data directory (all local data)."""
    import shutil

    s = _settings()
    localdb.stop(s.local_db)
    path = localdb.data_dir(s.local_db)
    shutil.rmtree(path, ignore_errors=True)
    if path.parent.parent == Path("/var/lib/anju"):  # the per-checkout folder of the fallback location
        shutil.rmtree(path.parent, ignore_errors=True)
    typer.echo(f"removed {path}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the local PostGIS."""
    s = _settings()
    typer.echo("stopped" if localdb.stop(s.local_db) else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the local PostGIS runs (exit 1 when not)."""
    s = _settings()
    running = localdb.is_running(s.local_db)
    typer.echo(f"{'running' if running else 'not running'}: {db.safe_url(s)} (data: {localdb.data_dir(s.local_db)})")
    raise typer.Exit(0 if running else 1)


@app.command()
def migrate(database: str = typer.Option(None, help="another database on the same server")) -> None:
    """Create the database (with postgis) if missing, then ``alembic upgrade head``."""
    do_migrate(_settings(), database)


def do_migrate(s: Settings, database: str | None = None) -> None:
    """``anju migrate`` (callable from other commands)."""
    ensure_server(s)

    async def run() -> None:
        await db.ensure_database(s, database)
        await db.migrate(s, database)

    asyncio.run(run())
    typer.echo(f"migrated: {db.safe_url(s, database)}")


@app.command()
def seed(scale: str = typer.Option("demo", help="'demo' (Liangshan + Yixin) or 'sichuan' (benchmark scale, generated)"),
         database: str = typer.Option(None, help="database name; default: the app's, or anju_sichuan for --scale sichuan"),
         ) -> None:
    """Load a dataset (idempotent: a second run writes nothing). 'sichuan' adds ~360,000 generated
    households to the demo data in its own database (default anju_sichuan), for the benchmarks."""
    do_seed(_settings(), scale, database)


def do_seed(s: Settings, scale: str = "demo", database: str | None = None) -> None:
    """``anju seed`` (callable from other commands)."""
    from anju.seed import load_demo, load_sichuan

    if scale not in ("demo", "sichuan"):
        _fail(f"--scale {scale!r}: expected 'demo' or 'sichuan'")
    ensure_server(s)
    if scale == "sichuan":
        database = database or "anju_sichuan"

    async def run() -> None:
        if database:
            await db.ensure_database(s, database)
            await db.migrate(s, database)
        engine = db.create_engine(s, database)
        try:
            summary = await (load_sichuan(engine) if scale == "sichuan" else load_demo(engine))
        finally:
            await engine.dispose()
        if scale == "sichuan":
            typer.echo(f"Sichuan-scale dataset: {summary}" if summary.loaded else summary.notes[0])
        elif summary.loaded:
            typer.echo(f"demo dataset loaded: {summary.admin_areas} admin areas, {summary.sites} site, "
                       f"{summary.facilities} facilities, {summary.households} households, {summary.members} members, "
                       f"{summary.employments} employments, {summary.income_linkages} income linkages")
        else:
            typer.echo("demo dataset already loaded; nothing written")

    asyncio.run(run())


@app.command()
def serve(host: str = typer.Option(None, help="default: HOST or 127.0.0.1"),
          port: int = typer.Option(None, help="default: PORT or 8000")) -> None:
    """Serve GraphQL at http://HOST:PORT/graphql (GraphiQL in a browser)."""
    do_serve(_settings(), host, port)


def do_serve(s: Settings, host: str | None = None, port: int | None = None) -> None:
    """``anju serve`` (callable from other commands)."""
    import uvicorn

    from anju.app import create_app

    ensure_server(s)
    host, port = host or s.host, port or s.port
    typer.echo(f"Anju GraphQL: http://{host}:{port}/graphql  (health: /healthz)")
    uvicorn.run(create_app(s), host=host, port=port, log_level="info")


@app.command()
def up(serve_after: bool = typer.Option(True, "--serve/--no-serve", help="serve after preparing")) -> None:
    """What ``make run`` does: database, migrations, demo data, then serve."""
    s = _settings()
    do_migrate(s)
    do_seed(s, "demo")
    if serve_after:
        do_serve(s)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
