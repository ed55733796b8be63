"""The two reference endpoints bench/api_throughput.py loads beside the real API, in the same run.

- `naive`: a plain sync FastAPI endpoint that parses the JSON body and makes one RQ enqueue
  (RQ's JSON serializer), run in Starlette's thread pool with a sync redis-py client: what a
  first version of a submit route looks like, with none of the service's checks.
- `ceiling`: an async endpoint doing the least a submission can: read the body, then one
  pipelined `redis.asyncio` round trip (store the job hash, push its id on a list). No
  validation, no key, no record: the most one process can accept through uvicorn and FastAPI.

Both are served by uvicorn with the API's own settings (one process, no access log), so only
the endpoint differs: `uvicorn --factory bench.submit_ceiling:naive_app` (REDIS_URL from the
environment).
"""

from __future__ import annotations

import os
import uuid

from fastapi import FastAPI, Request, Response
from rq import Queue
from rq.serializers import JSONSerializer

from platform_core.json_types import load_json_object
from platform_workers.async_redis import async_redis_from_url
from platform_workers.redis_conn import redis_from_url

PATH = "/v1/jobs/train"
NAIVE_QUEUE = "bench-naive"
CEILING_LIST = "bench-ceiling:queue"
CEILING_JOB = "bench-ceiling:job:"
TRAIN_FUNCTION = "model_trainer.worker.train_job.process_train_job"


def naive_app() -> FastAPI:
    redis = redis_from_url(os.environ["REDIS_URL"])
    queue = Queue(NAIVE_QUEUE, connection=redis, serializer=JSONSerializer)
    app = with_healthz(FastAPI())

    @app.post(PATH, status_code=202)
    def submit(body: dict[str, object]) -> dict[str, str]:
        job = queue.enqueue_call(func=TRAIN_FUNCTION, args=(body,))
        return {"job_id": job.id, "status": "queued"}

    return app


def ceiling_app() -> FastAPI:
    redis = async_redis_from_url(os.environ["REDIS_URL"])
    app = with_healthz(FastAPI())

    @app.post(PATH, status_code=202)
    async def submit(request: Request) -> Response:
        body = await request.body()
        load_json_object(body)
        job_id = uuid.uuid4().hex
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hset(CEILING_JOB + job_id, mapping={"payload": body, "status": "queued"})
            pipe.rpush(CEILING_LIST, job_id)
            await pipe.execute()
        answer = b'{"job_id":"' + job_id.encode() + b'","status":"queued"}'
        return Response(answer, status_code=202, media_type="application/json")

    return app


def with_healthz(app: FastAPI) -> FastAPI:
    """The load generator's idle request once it stops submitting, as on the real API."""

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
