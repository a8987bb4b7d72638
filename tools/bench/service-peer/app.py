"""The ORIGINAL design, re-created minimally so benchmarks can compare against it in the same run.

FastAPI served by uvicorn (2 worker processes); `POST /run?url=` enqueues a taskiq task on Redis
through taskiq-redis's ListQueueBroker and answers the job id at once; `GET /status/{id}` reads the
taskiq result backend (RedisAsyncResultBackend); `taskiq worker app:broker` runs the tasks. The task
is a no-op returning a path: only submit/enqueue/status are measured. It answers 202, like ours, so
the same clients (wrk, `kaggle-solver stress`, client.py) can drive both services.

    uvicorn app:app --workers 2 --port 8001      # API   (PEER_REDIS_URL=redis://127.0.0.1:6379)
    taskiq worker app:broker                      # worker
"""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379")

broker = ListQueueBroker(REDIS_URL).with_result_backend(RedisAsyncResultBackend(REDIS_URL))


@broker.task
async def solve(url: str) -> str:
    """Stands in for the pipeline: the original returned where the submission was written."""
    return "/data/submissions/" + url.rstrip("/").rsplit("/", 1)[-1] + ".csv"


@asynccontextmanager
async def lifespan(_app: FastAPI):
    if not broker.is_worker_process:
        await broker.startup()
    yield
    if not broker.is_worker_process:
        await broker.shutdown()


app = FastAPI(lifespan=lifespan)


@app.api_route("/run", methods=["GET", "POST"], status_code=202)
async def run(url: str) -> dict:
    task = await solve.kiq(url)
    return {"job_id": task.task_id}


@app.get("/status/{job_id}")
async def status(job_id: str) -> dict:
    backend = broker.result_backend
    if not await backend.is_result_ready(job_id):
        return {"status": "pending", "source": "local", "path": None, "message": None}
    result = await backend.get_result(job_id)
    if result.is_err:
        return {"status": "failed", "source": "local", "path": None, "message": str(result.error)}
    return {"status": "completed", "source": "local", "path": result.return_value, "message": None}
