"""``anju`` command line: local PostGIS, migrations, demo data, server."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from sqlalchemy.exc import DBAPIError

from anju import db, localdb
from anju.auth import ConfigError, issue_token, keys
from anju.settings import Settings
from resolvers.access import Role

app = typer.Typer(help="Anju (安居): relocation-site GraphQL service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="The project-local PostGIS cluster (used when DATABASE_URL is unset).", no_args_is_help=True)
app.add_typer(db_app, name="db")
user_app = typer.Typer(
    help="People and portals holding tokens (roles: admin, county_officer, planner, partner, grid_worker).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
schema_app = typer.Typer(help="The GraphQL schema (SDL) as the code defines it.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
areas_app = typer.Typer(help="Admin areas (行政区划): division codes and boundaries.", no_args_is_help=True)
app.add_typer(areas_app, name="areas")
import_app = typer.Typer(
    help="Bulk imports (导入): household rosters from CSV or XLSX, checked whole, written set-based.", no_args_is_help=True
)
app.add_typer(import_app, name="import")
log = logging.getLogger("anju")


POOL_LOGGER = f"{db.ServicePool.__module__}.{db.ServicePool.__name__}"
"""SQLAlchemy's logger of the engine's pool: INFO lines when a pool is disposed or recreated."""


def _settings() -> Settings:
    """The settings; a command's log on stderr: INFO and above, but not its pool's INFO lines.

    A command's engine is disposed when it ends, which SQLAlchemy's pool tells at INFO: noise after every command.
    ``do_serve`` lets the server's through.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger(POOL_LOGGER).setLevel(logging.WARNING)
    return Settings()


def _fail(msg: str) -> NoReturn:
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
def seed(
    scale: str = typer.Option("demo", help="'demo' (Liangshan + Yixin) or 'sichuan' (benchmark scale, generated)"),
    database: str = typer.Option(None, help="database name; default: the app's, or anju_sichuan for --scale sichuan"),
) -> None:
    """Load a dataset (idempotent: a second run writes nothing).

    'sichuan' adds ~360,000 generated households to the demo data in its own database (default anju_sichuan), for the benchmarks.
    """
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
            if summary.loaded:
                typer.echo(
                    f"Sichuan-scale dataset loaded: {summary.sites} sites, {summary.facilities} facilities, "
                    f"{summary.households} households, {summary.members} members, {summary.employments} employments, "
                    f"{summary.income_linkages} income linkages (with the demo dataset); wall time per phase:"
                )
                for note in summary.notes:
                    typer.echo(f"  {note}")
            else:
                typer.echo(summary.notes[0])
        elif summary.loaded:
            typer.echo(
                f"demo dataset loaded: {summary.admin_areas} admin areas, {summary.sites} site, "
                f"{summary.facilities} facilities, {summary.households} households, {summary.members} members, "
                f"{summary.employments} employments, {summary.income_linkages} income linkages"
            )
        else:
            typer.echo("demo dataset already loaded; nothing written")

    asyncio.run(run())


@app.command()
def serve(
    host: str = typer.Option(None, help="default: HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="default: PORT or 8000"),
    workers: int = typer.Option(None, min=1, help="server processes (default: ANJU_WORKERS, else one per CPU core)"),
) -> None:
    """Serve GraphQL at http://HOST:PORT/graphql (GraphiQL in a browser), one process per CPU core by default."""
    do_serve(_settings(), host, port, workers)


APP_FACTORY = "anju.app:create_app"
"""What each worker process imports and calls (``create_app()`` builds Settings from the environment)."""


def _metrics_dir() -> tuple[Path, bool]:
    """(the metrics directory, made here): the directory the workers share (``PROMETHEUS_MULTIPROC_DIR``).

    Prometheus-client's multiprocess mode. Made here (True): a temporary one, which ``do_serve`` removes when it stops. A
    given one is emptied of the last run's files; without one a fresh temporary directory is made. Set in the environment
    before any worker imports prometheus-client (the workers inherit it); so this module does not import anju.observe.
    """
    import os
    import tempfile

    given = os.environ.get(MULTIPROC_ENV := "PROMETHEUS_MULTIPROC_DIR")
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="anju-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path, not given


def do_serve(s: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """``anju serve`` (callable from other commands): uvicorn with ``workers`` processes (default ``s.worker_count``).

    With one worker the app runs in this process with ``s``. With more, uvicorn's supervisor binds the socket here and starts
    that many worker processes sharing it (the kernel hands each new connection to one of them); each builds its own app and
    Settings from the environment, the same environment ``s`` was read from. SIGTERM/SIGINT stop accepting, let in-flight
    requests finish for up to ``s.shutdown_timeout_seconds`` and exit 0.
    """
    metrics_dir, temporary = _metrics_dir()  # before anju.app imports prometheus-client
    try:
        _serve(s, metrics_dir, host, port, workers)
    finally:  # a stop (clean or not) leaves no temporary metrics files behind
        if temporary:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(s: Settings, metrics_dir: Path, host: str | None, port: int | None, workers: int | None) -> None:
    """``do_serve`` once the metrics directory is set."""
    import uvicorn

    logging.getLogger(POOL_LOGGER).setLevel(logging.NOTSET)  # a server's pool recreated after an outage is worth a line

    from anju.app import create_app
    from anju.observe import log_config
    from anju.serving import NoDelayHttpToolsProtocol

    ensure_server(s)
    host, port, n = host or s.host, port or s.port, workers or s.worker_count
    if n > 1:
        # Generate the development secrets (if missing) once, here, before the workers read them.
        try:
            keys(s)
        except ConfigError as exc:
            _fail(str(exc))
    typer.echo(
        f"Anju GraphQL: http://{host}:{port}/graphql  (health: /healthz, metrics: /metrics; "
        f"metrics files in {metrics_dir}; {n} worker process{'es' if n > 1 else ''})"
    )
    limits: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "info",
        "access_log": False,  # anju.observe writes the one structured line per request instead
        "log_config": log_config(s.log.format),
        "timeout_graceful_shutdown": s.shutdown_timeout_seconds,
        "timeout_worker_healthcheck": s.worker_healthcheck_seconds,
        "limit_concurrency": s.max_connections,
        "timeout_keep_alive": s.keep_alive_seconds,
        "http": NoDelayHttpToolsProtocol,  # the workers' connections would otherwise wait ≥ 40 ms per response (anju/serving.py)
    }
    if n == 1:
        # uvicorn re-raises the SIGTERM it handled once it has shut down; a finished graceful shutdown is a success here,
        # exit 0 as the multi-process supervisor does (SIGINT still ends with KeyboardInterrupt's status).
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        try:
            uvicorn.run(create_app(s), **limits)
        finally:
            signal.signal(signal.SIGTERM, previous)
    else:
        uvicorn.run(APP_FACTORY, factory=True, workers=n, **limits)


def _run_db(s: Settings, work: Any) -> Any:
    """Run ``work(sessionmaker)`` against the app database (starting the local cluster if needed)."""
    ensure_server(s)

    async def run() -> Any:
        engine = db.create_engine(s)
        try:
            return await work(db.create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="user name: 1-64 of A-Z a-z 0-9 _ . @ -"),
    role: str = typer.Option(..., help="admin | county_officer | planner | partner | grid_worker (grids assigned with the grid)"),
    area: list[str] = typer.Option(None, help="area code a county officer keeps (repeat for several)"),  # noqa: B008
    partner: int = typer.Option(None, help="cooperation partner id (role partner)"),
) -> None:
    """Create a user. Then ``anju token NAME`` issues its token."""
    from resolvers.access import add_user
    from resolvers.errors import AnjuError

    s = _settings()
    try:
        r = Role(role.lower())
    except ValueError:
        _fail(f"--role {role!r}: expected one of {', '.join(x.value for x in Role)}")
        return
    try:
        _run_db(s, lambda sm: add_user(sm, name, r, area or (), partner))
    except AnjuError as exc:
        _fail(exc.message)
    typer.echo(f"user {name} added ({r.value})")


@user_app.command("disable")
def user_disable(name: str = typer.Argument(..., help="the user whose tokens stop working now")) -> None:
    """Disable a user: every token of it is refused from the next request on."""
    from resolvers.access import set_disabled

    if not _run_db(_settings(), lambda sm: set_disabled(sm, name, True)):
        _fail(f"no user {name!r}")
    typer.echo(f"user {name} disabled")


@user_app.command("enable")
def user_enable(name: str = typer.Argument(..., help="a disabled user")) -> None:
    """Enable a disabled user again."""
    from resolvers.access import set_disabled

    if not _run_db(_settings(), lambda sm: set_disabled(sm, name, False)):
        _fail(f"no user {name!r}")
    typer.echo(f"user {name} enabled")


@user_app.command("passwd")
def user_passwd(
    name: str = typer.Argument(..., help="the user who will log in with this password (POST /auth/login, /map)"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from the first line of stdin"),
) -> None:
    """Set a user's password (Argon2id) for browser login; clears a lockout and logs out its browser sessions."""
    import sys

    from anju.login import policy
    from resolvers.errors import AnjuError
    from resolvers.logins import set_password

    s = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("新密码 New password", hide_input=True, confirmation_prompt=True)
    try:
        found = _run_db(s, lambda sm: set_password(sm, name, password, policy(s)))
    except AnjuError as exc:
        _fail(exc.message)
    if not found:
        _fail(f"no user {name!r}")
    typer.echo(f"password of {name} set")


@user_app.command("list")
def user_list() -> None:
    """Every user with role, areas and partner."""
    from resolvers.access import list_users

    for u in _run_db(_settings(), list_users):
        areas = ",".join(u["area_codes"] or []) or "-"
        flag = "\tDISABLED" if u["disabled"] else ""
        typer.echo(f"{u['name']}\t{u['role'].value}\tareas={areas}\tpartner={u['partner_id'] or '-'}{flag}")


MAX_ISSUES_SHOWN = 200
"""``anju areas import`` prints at most this many problems (and how many more there are)."""


@areas_app.command("import")
def areas_import(
    file: str = typer.Argument(..., help="GeoJSON (.geojson/.json), GeoPackage (.gpkg) or CSV (.csv, UTF-8) of divisions"),
    code_field: str = typer.Option(None, help="column of the division code (default: code, adcode or 区划代码)"),
    name_field: str = typer.Option(None, help="column of the name (default: name or 名称)"),
    layer: str = typer.Option(None, help="GeoPackage layer (default: the first)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
) -> None:
    """Load division codes and boundaries (GB/T 2260 + 12-digit statistical codes) into admin_area.

    Every row is checked (code shape, level, parent chain, polygon validity, WGS84) before anything is written (one transaction);
    a second run of the same file writes nothing. Exits 1 with the list of problems when the file has any.
    """
    from resolvers.admin_import import AreaImportError, import_areas, read_area_file
    from resolvers.errors import AnjuError

    s = _settings()
    name = Path(file).name
    try:
        area_file = read_area_file(file, code_field=code_field, name_field=name_field, layer=layer)
        counts = _run_db(s, lambda sm: import_areas(sm, area_file, dry_run=dry_run))
    except AreaImportError as exc:
        for issue in exc.issues[:MAX_ISSUES_SHOWN]:
            typer.echo(f"{name}: {issue}", err=True)
        more = len(exc.issues) - MAX_ISSUES_SHOWN
        _fail(exc.message + (f" ({more} more not shown)" if more > 0 else ""))
        return
    except AnjuError as exc:
        _fail(exc.message)
        return
    except (DBAPIError, OSError) as exc:
        _fail(f"database: unreachable or not migrated ({type(exc).__name__}); run `anju migrate` (or `make run`) first")
        return
    verb = "would insert" if dry_run else "inserted"
    typer.echo(
        f"{name}: {verb} {counts.inserted}, {'would update' if dry_run else 'updated'} {counts.updated}, "
        f"unchanged {counts.unchanged}" + (" (dry run: nothing written)" if dry_run else "")
    )


def _today(s: Settings) -> Any:
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(s.timezone)).date()


async def _progress(phase: str, rows: int) -> None:
    """An import's progress on stderr: reading, checking N rows, writing."""
    typer.echo(f"… {phase}" + (f" {rows:,} rows" if rows else ""), err=True)


@import_app.command("households")
def import_households_cmd(
    file: str = typer.Argument(..., help="household roster: .csv (UTF-8 with or without BOM, or GB18030/GBK) or .xlsx"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
    valid_only: bool = typer.Option(False, "--valid-only", help="write the households whose rows all pass; report the others"),
    encoding: str = typer.Option(None, help="the CSV's encoding (e.g. gbk, utf-8), instead of the rule: UTF-8, else GB18030"),
    as_user: str = typer.Option(
        None, "--as", help="import as this user (a county officer: only under its areas); default: system"
    ),
    report: str = typer.Option(None, help="write every problem as CSV here (行号 row, 列 column, 值 value, 原因 reason)"),
) -> None:
    """Import households with their members: one row per member, household columns repeated (户编号 household_code, …).

    Checked whole before anything is written (atomic: one bad row → nothing written, exit 1); households matched by code,
    members by ID number, so a second run of the same file writes nothing; changed rows update, audited.
    """
    from resolvers.household_import import import_households

    s = _settings()
    try:
        key = keys(s).id_number_key
    except ConfigError as exc:
        _fail(str(exc))
        return
    name = Path(file).name
    result = _run_import(
        s, file, as_user, report,
        lambda sm, limits: import_households(
            sm, file, limits=limits, today=_today(s), id_number_key=key,
            tolerance_meters=s.registry.location_tolerance_meters, max_vertices=s.features.max_vertices,
            encoding=encoding, dry_run=dry_run, valid_only=valid_only, progress=_progress,
        ),
    )  # fmt: skip
    h, mb = result.households, result.members
    would = "" if result.written else "would be "
    how = f"{result.kind}" + (f", {result.encoding}" if result.encoding else "")
    how += f", read by {result.read_by} processes" if result.read_by > 1 else ""
    typer.echo(
        f"{name} ({how}, {result.rows} rows"
        + (f", {result.example_rows} example rows skipped" if result.example_rows else "")
        + f"): households {would}inserted {h.inserted}, updated {h.updated}, unchanged {h.unchanged}, rejected {h.rejected}; "
        f"members {would}inserted {mb.inserted}, updated {mb.updated}, unchanged {mb.unchanged}, rejected {mb.rejected}"
    )
    if result.dry_run:
        typer.echo("dry run: nothing written")
    _import_outcome(name, result)
    if result.problems:
        typer.echo(f"{name}: {len(result.problems)} problem(s); households with one were left out")


@import_app.command("incomes")
def import_incomes_cmd(
    file: str = typer.Argument(..., help="household incomes (家庭纯收入): .csv or .xlsx, one row per household and year"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
    valid_only: bool = typer.Option(False, "--valid-only", help="write the rows that pass; report the others"),
    encoding: str = typer.Option(None, help="the CSV's encoding (e.g. gbk, utf-8), instead of the rule: UTF-8, else GB18030"),
    as_user: str = typer.Option(
        None, "--as", help="import as this user (a county officer: only its households); default: system"
    ),
    report: str = typer.Option(None, help="write every problem as CSV here (行号 row, 列 column, 值 value, 原因 reason)"),
) -> None:
    """Import household incomes: 户编号 household_code, 年份 year, 家庭纯收入 net_income, 家庭人口, 调查日期.

    Checked with recordHouseholdIncome's rules before anything is written (atomic unless --valid-only); a recorded year is
    corrected (audited), a new one inserted; the same file twice writes nothing.
    """
    from resolvers.income_import import import_incomes

    s = _settings()
    _run_simple_import(
        s, file, as_user, report, "incomes",
        lambda sm, limits: import_incomes(
            sm, file, limits=limits, today=_today(s), encoding=encoding, dry_run=dry_run, valid_only=valid_only
        ),
    )  # fmt: skip


@import_app.command("employments")
def import_employments_cmd(
    file: str = typer.Argument(..., help="employments (就业台账): .csv or .xlsx, one row per job spell, members by ID number"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
    valid_only: bool = typer.Option(False, "--valid-only", help="write the rows that pass; report the others"),
    encoding: str = typer.Option(None, help="the CSV's encoding (e.g. gbk, utf-8), instead of the rule: UTF-8, else GB18030"),
    as_user: str = typer.Option(
        None, "--as", help="import as this user (a county officer: only its households); default: system"
    ),
    report: str = typer.Option(None, help="write every problem as CSV here (行号 row, 列 column, 值 value, 原因 reason)"),
) -> None:
    """Import employments: 身份证号 id_number, 就业渠道 channel, 开始日期 start_on, 结束日期, 是否稳定就业 stable, ….

    Checked with recordEmployment's rules before anything is written (atomic unless --valid-only); a spell (member, channel,
    start date) already recorded is corrected (audited), a new one recorded; the same file twice writes nothing.
    """
    from resolvers.employment_import import import_employments

    s = _settings()
    try:
        key = keys(s).id_number_key
    except ConfigError as exc:
        _fail(str(exc))
        return
    _run_simple_import(
        s, file, as_user, report, "employments",
        lambda sm, limits: import_employments(
            sm, file, limits=limits, today=_today(s), id_number_key=key, encoding=encoding, dry_run=dry_run,
            valid_only=valid_only,
        ),
    )  # fmt: skip


def _run_simple_import(s: Settings, file: str, as_user: str | None, report: str | None, noun: str, run: Any) -> None:
    """An import of one record per row (incomes, employments, linkages): run it as ``as_user``, print problems and counts."""
    name = Path(file).name
    result = _run_import(s, file, as_user, report, run)
    r = result.records
    would = "" if result.written else "would be "
    typer.echo(
        f"{name} ({result.rows} rows): {noun} {would}inserted {r.inserted}, updated {r.updated}, unchanged {r.unchanged}, "
        f"rejected {r.rejected}" + ("; dry run: nothing written" if result.dry_run else "")
    )
    _import_outcome(name, result)


def _run_import(s: Settings, file: str, as_user: str | None, report: str | None, run: Any) -> Any:
    """Run ``run(sessionmaker, limits)`` as ``as_user`` (scoped; default: system), write the report, print the problems.

    Exits 1 (nothing written) when the file or the database fails as a whole. Answers the import's result.
    """
    from resolvers.access import scoped_sessionmaker, viewer_by_name
    from resolvers.errors import AnjuError, InvalidInput
    from resolvers.household_import import write_report
    from resolvers.tabular import FileLimits

    limits = FileLimits(**s.imports.model_dump())

    async def work(sm: Any) -> Any:
        if as_user is not None:
            viewer = await viewer_by_name(sm, as_user)
            if viewer is None:
                raise InvalidInput(f"--as: no enabled user {as_user!r} (`anju user list`)", field="as")
            sm = scoped_sessionmaker(sm, viewer)
        return await run(sm, limits)

    name = Path(file).name
    try:
        result = _run_db(s, work)
    except AnjuError as exc:
        _fail(f"{name}: {exc.message}; nothing written")
    except (DBAPIError, OSError) as exc:
        _fail(f"database: unreachable or not migrated ({type(exc).__name__}); run `anju migrate` (or `make run`) first")
    if report:
        write_report(result, report)
    for p in result.problems[:MAX_ISSUES_SHOWN]:
        typer.echo(f"{name}: row {p.row}: {p.column}: {p.reason}" + (f" (value {p.value})" if p.value else ""), err=True)
    more = len(result.problems) - MAX_ISSUES_SHOWN
    if more > 0:
        typer.echo(f"{name}: … {more} more problem(s)" + (f" in {report}" if report else "; --report FILE lists all"), err=True)
    return result


def _import_outcome(name: str, result: Any) -> None:
    """Exit 1 when problems kept the import from writing (atomic mode)."""
    if result.problems and not result.valid_only:
        _fail(f"{name}: {len(result.problems)} problem(s); nothing written (fix them, or --valid-only to write the rest)")


@import_app.command("linkages")
def import_linkages_cmd(
    file: str = typer.Argument(
        ..., help="income linkages (利益联结): .csv or .xlsx, one row per household/year/mechanism/facility"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
    valid_only: bool = typer.Option(False, "--valid-only", help="write the rows that pass; report the others"),
    encoding: str = typer.Option(None, help="the CSV's encoding (e.g. gbk, utf-8), instead of the rule: UTF-8, else GB18030"),
    as_user: str = typer.Option(
        None, "--as", help="import as this user (a county officer: only its households); default: system"
    ),
    report: str = typer.Option(None, help="write every problem as CSV here (行号 row, 列 column, 值 value, 原因 reason)"),
) -> None:
    """Import income linkages: 户编号 household_code, 年份 year, 联结方式 mechanism, 金额 amount, 设施编号 facility_id.

    Checked with recordIncomeLinkage's rules before anything is written (atomic unless --valid-only); a recorded linkage
    (household, year, mechanism, facility) gets the file's amount (audited), a new one is recorded; a second run writes nothing.
    """
    from resolvers.linkage_import import import_linkages

    _run_simple_import(
        _settings(), file, as_user, report, "linkages",
        lambda sm, limits: import_linkages(sm, file, limits=limits, encoding=encoding, dry_run=dry_run, valid_only=valid_only),
    )  # fmt: skip


def _place_import(kind: str, noun: str) -> Any:
    """``anju import sites|facilities``: one command per kind of place, the same options."""

    def command(
        file: str = typer.Argument(
            ..., help=f"{noun}: .csv/.xlsx (经度 lon, 纬度 lat columns), .geojson or .gpkg (feature geometries, WGS84 CRS)"
        ),
        dry_run: bool = typer.Option(False, "--dry-run", help="check everything and count, write nothing"),
        valid_only: bool = typer.Option(False, "--valid-only", help="write the rows that pass; report the others"),
        encoding: str = typer.Option(None, help="the CSV's encoding (e.g. gbk, utf-8), instead of the rule: UTF-8, else GB18030"),
        coord_sys: str = typer.Option("WGS84", "--coord-sys", help="the coordinates' system: WGS84, GCJ02 or BD09"),
        layer: str = typer.Option(None, help="the GeoPackage layer (default: the first)"),
        as_user: str = typer.Option(
            None, "--as", help="import as this user (a county officer: only under its areas); default: system"
        ),
        report: str = typer.Option(None, help="write every problem as CSV here (行号 row, 列 column, 值 value, 原因 reason)"),
    ) -> None:
        from resolvers.errors import InvalidInput
        from resolvers.layers import parse_coord_sys
        from resolvers.place_import import import_places

        try:
            system = parse_coord_sys(coord_sys, "--coord-sys")
        except InvalidInput as exc:
            _fail(exc.message)
        s = _settings()
        _run_simple_import(
            s, file, as_user, report, kind,
            lambda sm, limits: import_places(
                sm, file, kind, limits=limits, tolerance_meters=s.registry.location_tolerance_meters,
                max_vertices=s.features.max_vertices, encoding=encoding, coord_sys=system, layer=layer, dry_run=dry_run,
                valid_only=valid_only,
            ),
        )  # fmt: skip

    command.__doc__ = (
        f"Import {noun}: 名称 name, 类型 kind, 行政区划代码 admin_code, 经度 lon, 纬度 lat, … (or a GeoJSON/GeoPackage).\n\n"
        "Checked with the registry's rules before anything is written (atomic unless --valid-only); a row matches the place "
        "of the same admin code and name (corrected, audited) or is inserted; the same file twice writes nothing."
    )
    return command


import_app.command("sites")(_place_import("sites", "relocation sites (安置点)"))
import_app.command("facilities")(_place_import("facilities", "facilities (产业/服务设施)"))


@import_app.command("template")
def template_cmd(
    kind: str = typer.Argument(..., help="households, incomes, employments, linkages, sites or facilities"),
    fmt: str = typer.Option("csv", "--format", help="csv or xlsx"),
    output: str = typer.Option(None, help="file to write (default: KIND-template.csv/.xlsx here)"),
) -> None:
    """Write an import template: documented headers (Chinese, English) and example rows (skipped on import).

    The same file as ``GET /imports/templates/KIND.csv|xlsx`` (``anju.imports.TEMPLATES``: one definition of each kind's
    columns, sheet and layout note).
    """
    import importlib

    from anju.imports import TEMPLATES
    from resolvers.household_import import ROSTER_LAYOUT, write_template

    if kind not in TEMPLATES:
        _fail(f"template {kind!r}: expected one of {', '.join(TEMPLATES)}")
    if fmt not in ("csv", "xlsx"):
        _fail(f"--format {fmt!r}: expected csv or xlsx")
    module, name, sheet, layout = TEMPLATES[kind]
    columns = getattr(importlib.import_module(module), name)
    path = Path(output or f"{kind}-template.{fmt}")
    write_template(path, fmt, columns, sheet=sheet, layout=layout or ROSTER_LAYOUT)
    typer.echo(f"wrote {path} ({len(columns)} columns and two example rows, which an import skips)")


@app.command("export")
def export_cmd(
    kind: str = typer.Argument(
        ...,
        help="households, zero_employment_households, households_at_risk, employments, income_linkages, facilities, "
        "sites or coverage",
    ),
    output: str = typer.Option(..., "--output", "-o", help="the file to write"),
    fmt: str = typer.Option(None, "--format", help="csv, xlsx, gpkg, fgb or geojson (default: the output's suffix)"),
    area_code: str = typer.Option(None, "--area-code", help="areaCode: under this admin area (6, 9 or 12 digits)"),
    site_id: str = typer.Option(None, "--site-id", help="siteId: of this relocation site"),
    as_of: str = typer.Option(None, "--as-of", help="asOf: the date figures are true on, YYYY-MM-DD (default today)"),
    zero_employment: str = typer.Option(None, "--zero-employment", help="zeroEmployment: true or false (households)"),
    bbox: str = typer.Option(None, "--bbox", help="bbox: minLon,minLat,maxLon,maxLat (WGS84)"),
    kinds: str = typer.Option(None, "--kinds", help="kinds: facility kinds, comma-separated (SCHOOL,CLINIC)"),
    year: str = typer.Option(None, "--year", help="year: income year (households_at_risk, income_linkages)"),
    threshold: str = typer.Option(None, "--per-capita-threshold", help="perCapitaThreshold: yuan per person per year"),
    level: str = typer.Option(None, "--level", help="level: admin level of coverage rows (default COUNTY)"),
    as_user: str = typer.Option(None, "--as", help="export what this user may see (default: an admin)"),
) -> None:
    """Export a list as the API filters it: the same rows, columns and masking as GraphQL (docs/api.md, Exports).

    The filters are the GraphQL arguments' (``GET /exports/{kind}.{fmt}`` takes them as query parameters). CSV is UTF-8
    with BOM and Chinese-and-English headers; the households roster imports back with ``anju import households``.
    """
    from anju.exports import export_to_file, prepare, suppression_k
    from resolvers.access import Role, Viewer, viewer_by_name
    from resolvers.errors import AnjuError, InvalidInput

    s = _settings()
    path = Path(output)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    given = {
        "areaCode": area_code, "siteId": site_id, "asOf": as_of, "zeroEmployment": zero_employment, "bbox": bbox,
        "kinds": kinds, "year": year, "perCapitaThreshold": threshold, "level": level,
    }  # fmt: skip
    params = {k: v for k, v in given.items() if v is not None}

    async def work(sm: Any) -> int:
        viewer = Viewer(None, "system", Role.ADMIN)
        if as_user is not None:
            found = await viewer_by_name(sm, as_user)
            if found is None:
                raise InvalidInput(f"--as: no enabled user {as_user!r} (`anju user list`)", field="as")
            viewer = found
        k, a = prepare(kind, fmt, params, viewer, s)
        return await export_to_file(sm, k, fmt, a, viewer, path, k=suppression_k(viewer, s), params=params)

    try:
        size = _run_db(s, work)
    except AnjuError as exc:
        path.unlink(missing_ok=True)
        _fail(f"export {kind}: {exc.message}")
    except (DBAPIError, OSError) as exc:
        path.unlink(missing_ok=True)
        _fail(f"database: unreachable or not migrated ({type(exc).__name__}); run `anju migrate` (or `make run`) first")
    typer.echo(f"{path}: {size:,} bytes ({kind}, {fmt})")


@app.command()
def backup(
    file: str = typer.Argument(..., help="the archive to write (pg_dump custom format); the key goes to FILE.keys.json"),
) -> None:
    """Back up the database to FILE (pg_dump custom format) and its ID-number key to FILE.keys.json (mode 0600)."""
    from anju.backup import BackupError
    from anju.backup import backup as do_backup

    s = _settings()
    ensure_server(s)
    try:
        done = do_backup(s, Path(file))
    except BackupError as exc:
        _fail(str(exc))
    typer.echo(f"backup: {done.archive} ({done.archive.stat().st_size} bytes)")
    typer.echo(f"ID-number key (fingerprint {done.fingerprint[:12]}…): {done.keys_file} — keep it apart from the archive")


@app.command()
def restore(
    file: str = typer.Argument(..., help="an archive of `anju backup`"),
    database: str = typer.Option(..., help="the database to restore into (created; must not exist unless --replace)"),
    keys_file: str = typer.Option(None, "--keys", help="FILE.keys.json of the backup: check the configured key is its key"),
    replace: bool = typer.Option(False, "--replace", help="drop DATABASE first if it exists"),
) -> None:
    """Restore an `anju backup` archive into a new database on the configured server (then point DATABASE_URL at it)."""
    from anju.backup import BackupError, check_keys
    from anju.backup import restore as do_restore

    s = _settings()
    ensure_server(s)
    try:
        if keys_file is not None:
            fingerprint = check_keys(s, Path(keys_file))
            typer.echo(f"ID-number key: the configured key is the backup's (fingerprint {fingerprint[:12]}…)")
        do_restore(s, Path(file), database, replace=replace)
    except (BackupError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"restored {file} into database {database}")


@app.command()
def token(
    name: str = typer.Argument(..., help="an existing user"),
    hours: float = typer.Option(None, help="lifetime in hours (default: auth.token_ttl_hours)"),
) -> None:
    """Print a bearer token for NAME (the token alone, on stdout)."""
    from resolvers.access import list_users, viewer_by_name

    s = _settings()
    if _run_db(s, lambda sm: viewer_by_name(sm, name)) is None:
        known = {u["name"]: u for u in _run_db(s, list_users)}
        if name in known:
            _fail(f"user {name!r} is disabled; `anju user enable {name}` first")
        _fail(f"no user {name!r}; create it with `anju user add {name} --role ...`")
    try:
        typer.echo(issue_token(s, name, ttl_hours=hours))
    except ConfigError as exc:
        _fail(str(exc))


def demo_admin_token(s: Settings) -> str:
    """Create the demo admin when missing (env=dev) and return a 7-day token for it."""
    from resolvers.access import add_user, viewer_by_name

    async def ensure(sm: Any) -> None:
        if await viewer_by_name(sm, s.auth.demo_user) is None:
            await add_user(sm, s.auth.demo_user, Role.ADMIN)

    _run_db(s, ensure)
    return issue_token(s, s.auth.demo_user, ttl_hours=24 * 7)


@app.command()
def up(serve_after: bool = typer.Option(True, "--serve/--no-serve", help="serve after preparing")) -> None:
    """What ``make run`` does: database, migrations, demo data, a demo admin token (env=dev), then serve."""
    s = _settings()
    do_migrate(s)
    do_seed(s, "demo")
    if s.env == "dev":
        tok = demo_admin_token(s)
        typer.echo(f"demo admin token (7 days; `anju token {s.auth.demo_user}` prints a new one):\n{tok}")
        typer.echo("GraphiQL → Headers: " + json.dumps({"Authorization": f"Bearer {tok}"}))
        typer.echo(f"curl: -H 'Authorization: Bearer {tok}'")
        typer.echo(
            f"web map 地图: http://{s.host}:{s.port}/map (log in after `anju user passwd {s.auth.demo_user}` sets a password)"
        )
    if serve_after:
        do_serve(s)


SDL_FILE = Path(__file__).resolve().parent.parent / "docs" / "schema.graphql"
"""The checked-in SDL (``make docs`` rewrites it; tests/test_docs.py compares it with the code's)."""


def schema_sdl() -> str:
    """The SDL of the served schema (strawberry's ``print_schema``), ending with a newline.

    Needs no database: the schema's shape does not depend on the settings' limits.
    """
    from strawberry.printer import print_schema

    from schema import build_schema

    return print_schema(build_schema(Settings())) + "\n"


@schema_app.command("print")
def schema_print(
    output: str = typer.Option(None, help="write the SDL to this file instead of stdout (e.g. docs/schema.graphql)"),
) -> None:
    """Print the GraphQL schema (SDL) as the code defines it; ``make docs`` writes docs/schema.graphql."""
    sdl = schema_sdl()
    if output is None:
        typer.echo(sdl, nl=False)
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sdl, encoding="utf-8")
    typer.echo(f"wrote {path}", err=True)


def main() -> None:  # pragma: no cover - console entry
    """Run the ``anju`` command line (the console script)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
