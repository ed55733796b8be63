"""The FastAPI app: `uvicorn model_trainer.api.app:create_app --factory`.

Imports only contracts, storage, settings and the platform libraries, never torch or a backend:
the API process stays small, starts fast, and enqueues worker functions by dotted path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from model_trainer.api import ApiContext
from model_trainer.api.auth import key_checker
from model_trainer.api.body_limit import BodyLimit
from model_trainer.api.errors import install_error_handlers
from model_trainer.api.event_hub import EventHub
from model_trainer.api.http_metrics import RequestMetrics
from model_trainer.api.metrics import build_metrics_router
from model_trainer.api.openapi import operation_id
from model_trainer.api.routes.corpora import build_corpora_router
from model_trainer.api.routes.events import build_events_router
from model_trainer.api.routes.exports import build_exports_router
from model_trainer.api.routes.health import build_health_router
from model_trainer.api.routes.jobs import build_jobs_router
from model_trainer.api.routes.logs import build_logs_router
from model_trainer.api.routes.models import build_models_router
from model_trainer.api.routes.runs import build_runs_router
from model_trainer.api.routes.schedules import build_schedules_router
from model_trainer.api.routes.studies import build_studies_router
from model_trainer.api.routes.ui import build_ui_router
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.job_store import JobStore
from platform_workers.async_redis import AsyncRedisClient, async_redis_from_url
from platform_workers.keys import events_channel
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient, redis_from_url

API_DESCRIPTION = """Train and serve small language models as queued, typed jobs.

Every route except /healthz, /readyz and the documents needs `Authorization: Bearer <key>`.
Every refusal has one body, `{"error": {"code", "message", "details"}}`; each route lists the
codes it may answer with. A path no route has is `404 ROUTE_NOT_FOUND`, and a method a path does
not take `405 METHOD_NOT_ALLOWED`, in the same body."""


def create_app(
    settings: Settings | None = None,
    redis: RedisClient | None = None,
    hub: EventHub | None = None,
) -> FastAPI:
    """Build the app around one settings snapshot and one Redis client (tests inject both)."""
    return build_api(settings, redis, hub)[0]


def build_api(
    settings: Settings | None = None,
    redis: RedisClient | None = None,
    hub: EventHub | None = None,
) -> tuple[FastAPI, EventHub]:
    """The app and its event hub, which `model-trainer api` closes as soon as a signal comes."""
    resolved = load_settings() if settings is None else settings
    client = redis_from_url(resolved["redis_url"]) if redis is None else redis
    # Requests get their own async client, so a thousand SSE followers queueing for the hub's
    # connections never hold up a submission (a test's injected hub lends its client to both).
    if hub is None:
        hub = EventHub(async_redis_from_url(resolved["redis_url"]), events_channel(DOMAIN))
        aredis = async_redis_from_url(resolved["redis_url"])
    else:
        aredis = hub.redis
    batch = PipelineBatch(aredis)
    ctx: ApiContext = {
        "settings": resolved,
        "redis": client,
        "jobs": JobStore(client),
        "events": hub,
        "batch": batch,
        "caller": key_checker(batch),
    }
    # /docs and /redoc load their scripts and styles from this process, never from a CDN.
    app = FastAPIOffline(
        title="model-trainer",
        version="1",
        description=API_DESCRIPTION,
        lifespan=hub_lifespan(hub, aredis),
        generate_unique_id_function=operation_id,
        # Swagger UI would send the document's URL to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=resolved["max_request_bytes"])
    app.include_router(build_jobs_router(ctx))
    app.include_router(build_events_router(ctx))
    app.include_router(build_logs_router(ctx))
    app.include_router(build_corpora_router(ctx))
    app.include_router(build_runs_router(ctx))
    app.include_router(build_exports_router(ctx))
    app.include_router(build_models_router(ctx))
    app.include_router(build_studies_router(ctx))
    app.include_router(build_schedules_router(ctx))
    app.include_router(build_health_router(ctx))
    app.include_router(build_ui_router())  # the web page's files: no key, no data
    # Observability: GET /metrics, and every request counted (outermost, so refusals count).
    app.include_router(build_metrics_router(ctx))
    app.add_middleware(RequestMetrics)
    return app, hub


def hub_lifespan(
    hub: EventHub, aredis: AsyncRedisClient
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Runs the hub while the app serves; closes the requests' async client after it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await aredis.aclose()  # the hub's own, once more, when a test lent it (harmless)

    return lifespan
