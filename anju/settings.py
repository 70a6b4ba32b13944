"""Settings, read once from the environment (prefix ``ANJU_``) and ``.env``.

``DATABASE_URL`` (no prefix, the usual name) points Anju at an existing PostGIS; when it
is unset Anju manages a project-local cluster (``anju.localdb``) on 127.0.0.1:55432.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class LocalDbSettings(BaseModel):
    """The project-local PostGIS cluster used when ``DATABASE_URL`` is unset."""

    data_dir: Path = PROJECT_ROOT / ".pgdata"
    host: str = "127.0.0.1"
    port: int = 55432
    user: str = "anju"
    password: SecretStr = SecretStr("anju-local-dev")
    database: str = "anju"
    test_database: str = "anju_test"


M = TypeVar("M", bound=BaseModel)


def _default_within_max(group: M, name: str, default: str, maximum: str) -> M:
    """``group`` when its ``default`` setting does not exceed its ``maximum``; else ValueError naming both."""
    if getattr(group, default) > getattr(group, maximum):
        raise ValueError(f"{name}.{default} must not exceed {name}.{maximum}")
    return group


class PagingSettings(BaseModel):
    """Connection page sizes (API.md: ``first`` defaults to 50, at most 500)."""

    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(500, ge=1)

    @model_validator(mode="after")
    def _default_within_max(self) -> PagingSettings:
        return _default_within_max(self, "paging", "default_page_size", "max_page_size")


class MonitoringSettings(BaseModel):
    """防返贫监测 defaults."""

    per_capita_threshold: Decimal = Field(
        Decimal("10000"),
        ge=0,
        description="yuan per person per year; the report's Beichuan example counts households below 10,000",
    )


STAGE_ACTORS: dict[str, list[str]] = {
    "application": ["grid_worker", "village", "township", "county"],
    "home_verification": ["grid_worker", "village"],
    "village_appraisal": ["village"],
    "public_notice": ["village", "grid_worker"],
    "township_review": ["township"],
    "county_approval": ["county"],
    "elimination_proposal": ["grid_worker", "village"],
    "elimination_verification": ["grid_worker", "village"],
    "elimination_appraisal": ["village"],
    "elimination_notice": ["village", "grid_worker"],
    "elimination_review": ["township"],
    "elimination_confirmation": ["county"],
}
"""Who acts at each stage of a monitoring case by default: ``grid_worker`` (网格员), ``village`` / ``township`` /
``county`` (a county officer whose area code covering the household is a village, township or county), ``admin``."""


class CaseworkSettings(BaseModel):
    """Monitoring casework (issue #17): grids, case stages, who acts, missed-monitoring criteria."""

    grid_level_names: list[str] = Field(
        ["乡镇 township", "村或社区 village or community", "组或楼栋 group or building"],
        min_length=3,
        max_length=3,
        description="names of the three grid levels (三级网格), top first",
    )
    public_notice_days: int = Field(7, ge=1, description="N: days an identification's public notice (公示) lasts at least")
    elimination_notice_days: int = Field(7, ge=1, description="M: days a risk elimination's public notice lasts at least")
    stage_actors: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in STAGE_ACTORS.items()},
        description="stage → who may act on it (grid_worker, village, township, county, admin)",
    )
    monitoring_lines: dict[str, dict[int, Decimal]] = Field(
        default_factory=dict,
        description="监测线: province code (2 digits) → year → yuan per person per year; a province or year missing here "
        "uses monitoring.per_capita_threshold",
    )
    income_drop_share: Decimal = Field(
        Decimal("0.3"),
        ge=0,
        lt=1,
        description="a per-capita income lower than the year before by more than this share (0.3 = 30 %) is a criterion",
    )
    hardship_days: int = Field(365, ge=1, description="days a sudden-hardship report (突发严重困难) stays a criterion")

    @model_validator(mode="after")
    def _stages_known(self) -> CaseworkSettings:
        actors = {"grid_worker", "village", "township", "county", "admin"}
        for stage, who in self.stage_actors.items():
            if stage not in STAGE_ACTORS:
                raise ValueError(f"casework.stage_actors: unknown stage {stage!r}; expected one of {', '.join(STAGE_ACTORS)}")
            if not who or set(who) - actors:
                raise ValueError(f"casework.stage_actors.{stage}: expected some of {', '.join(sorted(actors))}")
        self.stage_actors = {**{k: list(v) for k, v in STAGE_ACTORS.items()}, **self.stage_actors}
        return self


class FeatureSettings(BaseModel):
    """GeoJSON layers and geometry inputs."""

    default_limit: int = Field(5000, ge=1, description="featureCollection default feature count")
    max_limit: int = Field(10000, ge=1, description="featureCollection largest feature count")
    cluster_below_zoom: int = Field(12, ge=0, le=22, description="point layers are clustered below this zoom")
    max_vertices: int = Field(10000, ge=4, description="largest input geometry accepted, vertices")

    @model_validator(mode="after")
    def _default_within_max(self) -> FeatureSettings:
        return _default_within_max(self, "features", "default_limit", "max_limit")


class TileSettings(BaseModel):
    """Mapbox Vector Tiles."""

    max_features_per_tile: int = Field(10000, ge=1)
    cache_seconds: int = Field(300, ge=0, description="Cache-Control max-age of tiles")


class RateLimitSettings(BaseModel):
    """Requests per user (token bucket in each worker process, every route; 0 = no limit)."""

    per_minute: int = Field(0, ge=0, description="sustained requests a minute per user and worker process; 0 = unlimited")
    burst: int = Field(60, ge=1, description="requests a user may send at once before the sustained rate applies")


class AuthSettings(BaseModel):
    """Bearer JWTs (PyJWT).

    HS256 with ``jwt_secret``; or RS256 verified with ``jwt_public_key`` (PEM) and issued with ``jwt_private_key`` (PEM, only
    where ``anju token`` runs). Outside ``env=prod`` a missing HS256 secret is generated once into ``.anju/secrets.json``.
    """

    algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_private_key: SecretStr | None = None
    issuer: str = "anju"
    audience: str = "anju"
    token_ttl_hours: float = Field(12, gt=0, description="lifetime of tokens `anju token` issues")
    max_token_hours: float = Field(
        24 * 90,
        gt=0,
        description="longest lifetime (exp − iat) a token may claim; longer ones are refused when issued and when used",
    )
    demo_user: str = Field("demo-admin", description="admin created by `make run` (env=dev only)")
    access_token_minutes: float = Field(15, gt=0, le=24 * 60, description="lifetime of the access tokens POST /auth/login gives")
    refresh_token_days: float = Field(14, gt=0, description="lifetime of each refresh token (a new one with every refresh)")
    refresh_reuse_grace_seconds: float = Field(
        60,
        ge=0,
        le=300,
        description="how long after a refresh token's use the same token may be used again (two browser tabs of one login "
        "refreshing at once) and get a new token; later, a reuse revokes the login; 0 = never",
    )
    max_failed_logins: int = Field(5, ge=1, description="failed logins in a row that lock a user")
    lockout_minutes: float = Field(15, gt=0, description="how long a locked user cannot log in, minutes")
    failed_logins_per_minute: int = Field(
        10,
        ge=0,
        description="failed logins a minute per client address and worker process before POST /auth/login answers 429 "
        "(whatever the user names); 0 = no limit",
    )
    failed_logins_burst: int = Field(30, ge=1, description="failed logins a client address may make at once")
    min_password_length: int = Field(10, ge=8, le=1024, description="shortest password `anju user passwd` accepts")


class CorsSettings(BaseModel):
    """Cross-origin browser access (CORS) to every route: which web pages on other origins may call Anju.

    Requests carry ``Authorization: Bearer`` tokens, not cookies, so credentials are never allowed; the default admits pages
    served from this machine (``localhost``/``127.0.0.1``, any port) for development. Production lists its front ends'
    origins in ``allow_origins`` (``ANJU_CORS__ALLOW_ORIGINS='["https://map.example.gov.cn"]'``) and may clear the regex.
    """

    allow_origins: list[str] = Field(default_factory=list, description="origins allowed exactly, e.g. https://map.example.cn")
    allow_origin_regex: str | None = Field(
        r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?",
        description="origins allowed by regular expression (full match); the default: pages on this machine",
    )
    max_age_seconds: int = Field(600, ge=0, description="how long a browser may cache a preflight answer, seconds")


class MapPageSettings(BaseModel):
    """Anju's own web map at ``/map``: with no basemap setting the admin boundaries are the base (no internet needed)."""

    basemap_url: str | None = Field(
        None,
        description="raster XYZ tile URL template of a basemap ({z}/{x}/{y}), e.g. AMap's or Tianditu's (with its tk key)",
    )
    basemap_coord_sys: Literal["WGS84", "GCJ02"] = Field(
        "WGS84", description="coordinates of the basemap: GCJ02 for AMap (高德); Anju's layers are then asked in GCJ02"
    )
    basemap_attribution: str = Field("", description="attribution shown for the basemap")


class PrivacySettings(BaseModel):
    """Personal data.

    ID numbers are kept only as HMAC-SHA256(id_number_key, number) plus the last 4 characters; partner aggregates suppress cells
    below ``min_cell_households``. Outside ``env=prod`` a missing key is generated once into ``.anju/secrets.json`` (keep it:
    hashes made with one key cannot be matched with another).
    """

    id_number_key: SecretStr | None = None
    min_cell_households: int = Field(5, ge=1, description="k: partner aggregates of fewer households are null")


class RegistrySettings(BaseModel):
    """Registry writes: relocation sites, facilities and households (their mutations)."""

    location_tolerance_meters: float = Field(
        2000.0,
        ge=0,
        description="how far (geodesic metres) a site's or facility's location, or a household's dwelling, may lie outside "
        "the polygon of its admin area (or of the nearest ancestor that has one) before it is refused",
    )


class PlannerSettings(BaseModel):
    """Reads planned into SQL (schema/planner.py): PostgreSQL builds the response JSON."""

    enabled: bool = Field(True, description="plan query root fields into one SQL statement where possible")
    verify: bool = Field(
        False,
        description="also resolve every planned field through the resolvers and log any difference (the test suite turns it "
        "on; doubles the work of a read)",
    )
    cache_size: int = Field(512, ge=0, description="compiled plans kept per process (document × variables × day × viewer)")
    read_connections: int = Field(
        4,
        ge=1,
        description="connections per process kept for repeated planned reads (anju.db.ReadPool); more than the cores "
        "PostgreSQL has only adds contention",
    )


class ImportSettings(BaseModel):
    """Bulk imports (``anju import``): what a file may hold; a file over a limit is refused before anything is written."""

    max_file_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="largest import file on disk, bytes")
    max_rows: int = Field(2_000_000, ge=1, description="most data rows of one file (a Sichuan roster: ~1.35 M members)")
    max_cell_chars: int = Field(1000, ge=50, description="longest cell, characters")
    max_xlsx_unzipped_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024,
        description="largest uncompressed size of an XLSX's parts (declared in its zip directory, checked before parsing), bytes",
    )


class PlanningSettings(BaseModel):
    """Planning (issue #15): facility placement, site scorecards, training follow-up."""

    max_picks: int = Field(20, ge=1, description="most new facilities facilityPlacement places in one answer")
    max_candidates: int = Field(5000, ge=1, description="most candidate locations facilityPlacement weighs")
    scorecard_distance_meters: float = Field(
        5000.0, gt=0, description="default distance of siteScorecards' households beyond a school, clinic or water supply, metres"
    )
    follow_up_years: int = Field(
        3, ge=1, description="years a trainee placed in work is followed up (精培计划: at least three, the report)"
    )
    follow_up_interval_days: int = Field(90, ge=1, description="days between two follow-up visits of a placed trainee")


class LiveSettings(BaseModel):
    """Live updates: GraphQL subscriptions over WebSocket (``graphql-transport-ws``) and their outbox (anju/live.py)."""

    enabled: bool = Field(True, description="listen for changes and serve subscriptions")
    max_connections: int = Field(200, ge=1, description="open subscription WebSockets per worker process; more are refused")
    max_subscriptions_per_connection: int = Field(10, ge=1, description="operations one WebSocket may run at once")
    retention_hours: float = Field(72, gt=0, description="how long events are kept for clients resuming with `after`, hours")
    prune_interval_seconds: float = Field(600, gt=0, description="how often each worker prunes events past retention, seconds")
    poll_seconds: float = Field(2.0, gt=0, description="numbering pass without a notification (a safety net), seconds")
    recheck_seconds: float = Field(
        30, gt=0, description="a subscriber's user row is re-read at least this often (disabled → the connection is closed)"
    )
    batch: int = Field(500, ge=1, description="events read per statement when a subscriber catches up")
    connection_init_seconds: float = Field(10, gt=0, description="time a new WebSocket has to send connection_init, seconds")


class MetricsSettings(BaseModel):
    """``GET /metrics`` (Prometheus): allowed with the bearer ``token``, or from an address in ``allowed_networks``."""

    token: SecretStr | None = Field(None, description="bearer token a scraper sends (Authorization: Bearer …); unset = none")
    allowed_networks: list[str] = Field(
        ["127.0.0.0/8", "::1/128"],
        description="client addresses (CIDR) that may scrape without the token; [] = the token only",
    )


class LogSettings(BaseModel):
    """Anju's logs (stderr): ``text`` or one JSON object a line; a line per request (``anju.request``)."""

    format: Literal["text", "json"] = "text"
    requests: bool = Field(True, description="one log line per request (request id, route, status, duration, viewer, operation)")


class Settings(BaseSettings):
    """All of Anju's settings. Built once in ``create_app`` / the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="ANJU_",
        env_file=PROJECT_ROOT / ".env",  # the checkout's .env, wherever `anju` is run from
        env_nested_delimiter="__",
        extra="ignore",
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "ANJU_DATABASE_URL"),
        description="SQLAlchemy URL of an existing PostGIS; unset = project-local cluster.",
    )
    pool_size: int = Field(10, ge=1, description="async engine pool size (sibling resolvers fan out)")
    max_overflow: int = Field(10, ge=0)
    statement_timeout_ms: int = Field(30_000, ge=100, description="per-statement timeout, milliseconds")
    connect_timeout_seconds: float = Field(
        10, gt=0, description="opening a database connection gives up after this long (then 503 INTERNAL), seconds"
    )
    pool_wait_seconds: float = Field(
        120,
        gt=0,
        le=600,
        description="while the database is up, a request waits in line at most this long for a free pooled connection "
        "(then 503 INTERNAL); while it is down nobody waits (the connect timeout bounds the answer), seconds",
    )
    local_db: LocalDbSettings = LocalDbSettings()
    paging: PagingSettings = PagingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    casework: CaseworkSettings = CaseworkSettings()
    features: FeatureSettings = FeatureSettings()
    tiles: TileSettings = TileSettings()
    registry: RegistrySettings = RegistrySettings()
    planner: PlannerSettings = PlannerSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    imports: ImportSettings = ImportSettings()
    planning: PlanningSettings = PlanningSettings()
    live: LiveSettings = LiveSettings()
    max_query_depth: int = Field(12, ge=2, description="deepest GraphQL selection allowed")
    max_aliases: int = Field(30, ge=1, description="aliases allowed in one GraphQL document")
    max_tokens: int = Field(5000, ge=100, description="lexical tokens allowed in one GraphQL document")
    max_body_bytes: int = Field(256_000, ge=1024, description="largest HTTP request body accepted, bytes")
    max_cost: int = Field(
        100_000,
        ge=1,
        description="largest query cost: every field 1, times the `first` of each enclosing list (QUERY_TOO_COMPLEX)",
    )
    max_root_fields: int = Field(10, ge=1, description="root fields allowed in one operation")
    introspection: bool = Field(True, description="answer __schema/__type queries (turn off in prod if wanted)")
    auth: AuthSettings = AuthSettings()
    cors: CorsSettings = CorsSettings()
    map_page: MapPageSettings = MapPageSettings()
    privacy: PrivacySettings = PrivacySettings()
    timezone: str = Field("Asia/Shanghai", description="zone of the default `asOf` date (today)")
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("HOST", "ANJU_HOST"))
    port: int = Field(8000, validation_alias=AliasChoices("PORT", "ANJU_PORT"))
    workers: int | None = Field(
        None,
        ge=1,
        description="server processes of `anju serve` sharing one listening socket; unset = one per CPU core (os.cpu_count())",
    )
    worker_healthcheck_seconds: int = Field(
        60,
        ge=1,
        description="with several workers: how long a worker may take to start, or to answer the supervisor's liveness "
        "ping, before it is replaced (uvicorn's 5 s killed workers still importing on a busy 2-core machine), seconds",
    )
    shutdown_timeout_seconds: int = Field(
        30, ge=1, description="on SIGTERM/SIGINT, how long in-flight requests may still run before they are cancelled, seconds"
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="concurrent connections (and requests) per server process; beyond it new requests answer HTTP 503",
    )
    keep_alive_seconds: int = Field(5, ge=1, description="an idle HTTP keep-alive connection is closed after this long, seconds")
    header_timeout_seconds: float = Field(
        10, gt=0, description="a connection whose request line and headers are not all in within this long is closed, seconds"
    )
    body_timeout_seconds: float = Field(
        20, gt=0, description="a request body (not an import file) not all in within this long answers 408 and closes, seconds"
    )
    idempotency_hours: int = Field(
        24, ge=1, description="how long a create's idempotencyKey answers with its first result, hours"
    )
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()

    @property
    def worker_count(self) -> int:
        """``workers``, or one per CPU core when unset (at least 1)."""
        return self.workers or os.cpu_count() or 1

    @property
    def uses_local_db(self) -> bool:
        """True when Anju manages its own cluster (``DATABASE_URL`` unset)."""
        return not self.database_url

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """The ``postgresql+asyncpg://`` URL, optionally for another database name.

        Raises:
            ValueError: ``DATABASE_URL`` is not a PostgreSQL URL.
        """
        from sqlalchemy.engine import make_url

        if self.database_url:
            url = make_url(self.database_url)
            if not url.drivername.startswith("postgres"):
                raise ValueError("DATABASE_URL must be a postgresql:// URL")
            url = url.set(drivername="postgresql+asyncpg")
        else:
            ld = self.local_db
            url = make_url(f"postgresql+asyncpg://{ld.user}@{ld.host}:{ld.port}/{ld.database}").set(
                password=ld.password.get_secret_value()
            )
        if database:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def asyncpg_dsn(self, database: str | None = None) -> str:
        """The plain ``postgresql://`` DSN of ``sqlalchemy_url``: the connections asyncpg opens itself (fast reads, live hub).

        Raises:
            ValueError: ``DATABASE_URL`` is not a PostgreSQL URL.
        """
        from sqlalchemy.engine import make_url

        return make_url(self.sqlalchemy_url(database)).set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def database_name(self) -> str:
        """Name of the application database."""
        from sqlalchemy.engine import make_url

        return make_url(self.sqlalchemy_url()).database or "anju"
