"""A small HTTP server for operations: `/metrics` (Prometheus) and `/healthz`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from translator.ops.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, object]]]


class OpsServer:
    def __init__(self, metrics: Metrics, health: HealthCheck, *, host: str, port: int) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _health_view(self, request: web.Request) -> web.Response:
        healthy, details = self._health()
        return web.json_response(
            {"status": "ok" if healthy else "degraded", **details}, status=200 if healthy else 503
        )

    async def start(self) -> None:
        app = web.Application()
        app.add_routes([web.get("/metrics", self._metrics_view), web.get("/healthz", self._health_view)])
        self._runner, self.port = await serve_app(app, self._host, self.port)
        log.info("operations endpoint on http://%s:%d (/metrics, /healthz)", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start `app` on host:port; its runner (to clean up) and the port it is bound to (0 = any)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # The bound port is only visible on aiohttp's server (asyncio's or uvloop's Server class).
    sockets = getattr(site._server, "sockets", None)
    return runner, (sockets[0].getsockname()[1] if sockets else port)
