"""The supervisor's operations endpoint: the workers' metrics summed (/metrics) or labelled by worker
(/metrics/workers), and one health answer for them all (/healthz). Workers are scraped on loopback at each
request, each within a bound: a stuck worker costs its share of the answer, never the whole answer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.metrics_core import Metric

from translator.ops.http import serve_app
from translator.ops.metrics import CONTENT_TYPE
from translator.workers.metrics import labelled, render, summed

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class WorkerView:
    index: int
    state: str  # "starting", "ready", "restarting", "stopped"
    pid: int | None
    restarts: int
    operations_port: int | None  # while ready


def _own_families(workers: Sequence[WorkerView]) -> list[Metric]:
    states = Metric("iotc_translator_workers", "Worker processes by state", "gauge")
    for state in ("starting", "ready", "restarting", "stopped"):
        states.add_sample(
            "iotc_translator_workers", {"state": state}, float(sum(w.state == state for w in workers))
        )
    restarts = Metric("iotc_translator_worker_restarts", "Worker processes restarted after dying", "counter")
    for worker in workers:
        restarts.add_sample(
            "iotc_translator_worker_restarts_total", {"worker": str(worker.index)}, float(worker.restarts)
        )
    return [states, restarts]


class SupervisorOps:
    def __init__(self, workers: Callable[[], Sequence[WorkerView]], *, host: str, port: int) -> None:
        self._workers = workers
        self._host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def _scrape(self, path: str) -> dict[int, tuple[int, str]]:
        """Worker index → (HTTP status, body) of every ready worker that answered in time."""
        assert self._client is not None
        client = self._client

        async def one(worker: WorkerView) -> tuple[int, tuple[int, str]] | None:
            url = f"http://127.0.0.1:{worker.operations_port}{path}"
            try:
                async with asyncio.timeout(SCRAPE_TIMEOUT), client.get(url) as response:
                    return worker.index, (response.status, await response.text())
            except (TimeoutError, aiohttp.ClientError) as error:
                log.debug("worker %d: %s: %s", worker.index, path, error)
                return None

        ready = [w for w in self._workers() if w.state == "ready" and w.operations_port is not None]
        answers = await asyncio.gather(*(one(worker) for worker in ready))
        return dict(answer for answer in answers if answer is not None)

    async def _metrics_view(self, request: web.Request) -> web.Response:
        scraped = {index: body for index, (status, body) in (await self._scrape("/metrics")).items()}
        families = summed(scraped.values()) + _own_families(self._workers())
        return web.Response(body=render(families), headers={"Content-Type": CONTENT_TYPE})

    async def _workers_view(self, request: web.Request) -> web.Response:
        scraped = {index: body for index, (status, body) in (await self._scrape("/metrics")).items()}
        families = labelled(scraped) + _own_families(self._workers())
        return web.Response(body=render(families), headers={"Content-Type": CONTENT_TYPE})

    async def _health_view(self, request: web.Request) -> web.Response:
        answers = await self._scrape("/healthz")
        workers: list[dict[str, Any]] = []
        healthy = True
        devices = 0
        for worker in self._workers():
            status, body = answers.get(worker.index, (0, ""))
            details: dict[str, Any] = {}  # its own /healthz answer
            if body:
                try:
                    details = dict(json.loads(body))
                except ValueError:
                    details = {}
            worker_healthy = worker.state == "ready" and status == 200
            healthy = healthy and worker_healthy
            devices += int(details.get("devices", 0) or 0)
            workers.append(
                {
                    "worker": worker.index,
                    "pid": worker.pid,
                    "state": worker.state,
                    "restarts": worker.restarts,
                    "status": details.get("status", "unreachable")
                    if worker.state == "ready"
                    else worker.state,
                    **{k: v for k, v in details.items() if k != "status"},
                }
            )
        return web.json_response(
            {"status": "ok" if healthy else "degraded", "devices": devices, "workers": workers},
            status=200 if healthy else 503,
        )

    async def start(self) -> None:
        self._client = aiohttp.ClientSession()
        app = web.Application()
        app.add_routes(
            [
                web.get("/metrics", self._metrics_view),
                web.get("/metrics/workers", self._workers_view),
                web.get("/healthz", self._health_view),
            ]
        )
        self._runner, self.port = await serve_app(app, self._host, self.port)
        log.info("operations on http://%s:%d (/metrics, /metrics/workers, /healthz)", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.close()
            self._client = None
