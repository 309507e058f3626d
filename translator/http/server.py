"""The HTTP face: a drop-in for IoT Central's Device Bridge v1 (an Azure Function), and webhook adapters.

    POST /api/IoTCIntegration?code=KEY     the v1 body (translator/http/v1.py); the v1 function's URL path
    POST /ttn/uplink?code=KEY[&modelId=…]  a The Things Stack uplink message (translator/http/ttn.py)

The key travels as the v1 function's did: Azure Functions takes a function key "in a query string variable
named code" or "in an x-functions-key HTTP header", and answers 401 without it
(https://learn.microsoft.com/azure/azure-functions/functions-bindings-http-webhook-trigger#api-key-authorization).

Answers: 200 only when the sink returned an `Outcome` (the measurements were PUBACKed by the hub or are in
the fsynced outbox, `translator.coap.sink.acknowledged`); 400 with a sentence for a body v1 refuses; 401
for a missing or wrong key; 403 when the device has no credentials; 413 for a body over IoT Hub's 256 KB
message limit; 503 with Retry-After when the outbox is full, the device's session is closing, or the data
is not safe within `timeout` — the sender keeps it and retries, as a CoAP device does after 5.03.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from translator.coap import BackPressure, Forbidden, Outcome
from translator.http.ttn import ttn_uplink_request
from translator.http.v1 import BridgeRequest, InvalidRequest, parse_request
from translator.ops.logs import device_log

log = logging.getLogger(__name__)

V1_PATH = "/api/IoTCIntegration"
TTN_UPLINK_PATH = "/ttn/uplink"
# IoT Hub refuses a device-to-cloud message over 256 KB
# (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling#other-limits).
MAX_BODY = 256 * 1024
TIMEOUT_RETRY = 5  # Retry-After (s) when the data was not safe in time


class RequestSink(Protocol):
    async def deliver(self, request: BridgeRequest) -> Outcome:
        """Once the request's data is safe, the Outcome that says so; raises BackPressure to push back."""
        ...


Parser = Callable[[object, web.Request], BridgeRequest]


def _v1(body: object, request: web.Request) -> BridgeRequest:
    return parse_request(body)


def _ttn(body: object, request: web.Request) -> BridgeRequest:
    return ttn_uplink_request(body, model_id=request.query.get("modelId") or None)


class HttpBridgeServer:
    def __init__(
        self, sink: RequestSink, *, host: str, port: int, key: str, timeout: float, reuse_port: bool = False
    ) -> None:
        if not key:
            raise ValueError("the HTTP bridge needs a key")
        self._sink = sink
        self._host = host
        self.port = port
        self._key = key.encode()
        self._timeout = timeout
        self._reuse_port = reuse_port  # `serve --workers`: each worker listens on the port
        self._runner: web.AppRunner | None = None
        self._deliveries: set[asyncio.Task[Outcome]] = set()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(
            [
                web.post(V1_PATH, self._handler(_v1)),
                web.post(TTN_UPLINK_PATH, self._handler(_ttn)),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, reuse_port=self._reuse_port or None)
        await site.start()
        # The bound port (0 = any) is only visible on aiohttp's server (asyncio's or uvloop's Server class).
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("HTTP bridge (Device Bridge v1 drop-in) on http://%s:%d%s", self._host, self.port, V1_PATH)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("x-functions-key") or request.query.get("code") or ""
        return hmac.compare_digest(given.encode(), self._key)

    def _handler(self, parse: Parser) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return web.Response(
                    status=401, text="Unauthorized: a valid key is required (?code= or x-functions-key)."
                )
            try:
                body = json.loads(await request.read())
            except (UnicodeDecodeError, json.JSONDecodeError):
                return web.Response(status=400, text="Invalid format: the body is not JSON.")
            try:
                parsed = parse(body, request)
            except InvalidRequest as error:
                return web.Response(status=400, text=str(error))
            return await self._deliver(parsed)

        return handle

    async def _deliver(self, parsed: BridgeRequest) -> web.Response:
        # A task of its own, shielded from the wait's timeout: data half-way into the outbox is not cut off;
        # stop() cancels what is left.
        task = asyncio.ensure_future(self._sink.deliver(parsed))
        self._deliveries.add(task)
        task.add_done_callback(_finished(self._deliveries))
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except BackPressure as error:
            return _unavailable(error.reason, error.retry_after)
        except TimeoutError:
            return _unavailable(f"{parsed.device_id}: not safe within {self._timeout:g} s", TIMEOUT_RETRY)
        except Forbidden as error:
            return web.Response(status=403, text=error.reason)
        except Exception:
            device_log(log, parsed.device_id).exception("HTTP telemetry failed")
            return web.Response(status=500, text="Internal error: the measurements were not kept.")
        return web.json_response({"outcome": outcome.value})


def _unavailable(reason: str, retry_after: int) -> web.Response:
    return web.Response(status=503, text=reason, headers={"Retry-After": str(max(1, retry_after))})


def _finished(tasks: set[asyncio.Task[Outcome]]) -> Callable[[asyncio.Task[Outcome]], None]:
    def done(task: asyncio.Task[Outcome]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure after a 503 was answered is no warning

    return done
