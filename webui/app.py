"""Composition root: one NiceGUI/FastAPI server with the API, pages and database."""

from __future__ import annotations

import asyncio
import gc

from nicegui import app, ui

from core import hlc
from core.db.engine import Database
from core.db.migrations import require_current_schema
from core.services import audit_checkpoints, refusals, roles
from core.services.audit_checkpoints import AuditTrail, CheckpointLog
from core.settings import Settings
from webui import api, api_docs, http, oidc_signin, pages, storage_files
from webui.api import errors, metrics
from webui.backbone.server import Backbone
from webui.components import browser_time, page_error
from webui.http import tls
from webui.http.limits import BodyLimit
from webui.services import Services

TITLE = "PrecisionPulse"


def freeze_startup_heap() -> None:
    """Leave what the server built at start out of every later garbage collection.

    A full collection walks every tracked object while it holds the interpreter: over the
    server's startup heap that took 120-150 ms, a few times a minute while a station
    replayed, and every live sample in flight waited it out (bench.replay: live p99 236 ms
    against 66 ms frozen; the same passes took 3-24 ms).
    """
    gc.collect()
    gc.freeze()


async def prepare(settings: Settings) -> None:
    """Refuse an out-of-date schema, then create or repair the built-in roles."""
    await require_current_schema(settings.async_database_url)
    database = Database(settings.async_database_url)
    try:
        async with database.session() as session:
            await roles.ensure_builtins(session)
    finally:
        await database.close()


def build(settings: Settings) -> Services:
    """Register everything on the NiceGUI app; no I/O happens until a request comes."""
    hlc.configure(settings.node_id)
    audit_key = audit_checkpoints.load_or_create_key(audit_checkpoints.key_path(settings))
    database = Database(settings.async_database_url, audit_key=audit_key)
    backbone = Backbone(settings, database)
    checkpoints = CheckpointLog(audit_checkpoints.checkpoint_path(settings), backbone.signing_key)
    audit_trail = AuditTrail(database, checkpoints)
    services = Services(settings, database, backbone, audit_trail)
    app.state.services = services  # what the API's dependencies hand out (webui/deps.py)
    errors.install(app)
    # Inside the hardening layers, so a 413 carries the security headers too.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    http.install(app, settings)
    app.include_router(api.router())
    app.include_router(metrics.router)
    if settings.api_docs:  # before ui.run adds FastAPI's CDN-bound pages for the same paths
        api_docs.install(app, f"{TITLE} API")
    pages.register(services)
    if settings.oidc_enabled:
        oidc_signin.install(services)  # /auth/oidc/start and /auth/oidc/callback
    page_error.install(services)  # a page whose build fails says so in words, in its shell
    browser_time.install()  # every page's browser names its zone, so pages know it when built
    app.on_startup(backbone.start)
    app.on_startup(audit_trail.start)
    app.on_startup(freeze_startup_heap)  # last: everything started is built
    app.on_shutdown(backbone.stop)  # before the database closes: ingest drains into it
    app.on_shutdown(refusals.settled)  # refusals still being audited land before the checkpoint
    app.on_shutdown(audit_trail.stop)  # a last checkpoint, after the last audited change
    app.on_shutdown(database.close)
    return services


def run_kwargs(settings: Settings) -> dict[str, object]:
    """The ``ui.run`` arguments shared by the server and the test harness."""
    return {
        "title": TITLE,
        "storage_secret": settings.secret_key,  # NiceGUI finds webui.http's session middleware
        # webui.http believes X-Forwarded-* from PP_TRUSTED_PROXIES only; uvicorn's own layer
        # would believe any local process.
        "proxy_headers": False,
        # /docs, /redoc and /openapi.json, unless PP_API_DOCS=false (then they answer 404);
        # the two pages themselves are webui.api_docs's, which need no outside host.
        "fastapi_docs": {"title": f"{TITLE} API", "version": "1"} if settings.api_docs else False,
        "reload": False,
        "show": False,
        "show_welcome_message": False,
        "favicon": "📈",
    }


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Run the server until interrupted (after checking the schema and the TLS files).

    Refuses (ExposedSecretError) to listen beyond loopback with the development secret key.
    """
    settings.check_listen(host or settings.http_host)
    https = tls.uvicorn_options(settings.ssl_certfile, settings.ssl_keyfile)
    storage_files.make_private(app.storage.path)
    asyncio.run(prepare(settings))
    build(settings)
    ui.run(
        host=host or settings.http_host,
        port=port or settings.http_port,
        **(run_kwargs(settings) | https),  # type: ignore[arg-type]
    )
