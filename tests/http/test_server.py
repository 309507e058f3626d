"""The HTTP face's answers for each thing its sink can do (a stand-in sink behind a real aiohttp socket;
the real pipeline is in tests/e2e/test_http_bridge.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from translator.coap import BackPressure, Forbidden, Outcome
from translator.http.server import V1_PATH, HttpBridgeServer
from translator.http.v1 import BridgeRequest

BODY = {"device": {"deviceId": "dev-1"}, "measurements": {"t": 1}}


class Sink:
    def __init__(self) -> None:
        self.answer: Callable[[], Awaitable[Outcome]] = self.kept
        self.cancelled = asyncio.Event()

    async def kept(self) -> Outcome:
        return Outcome.KEPT

    async def deliver(self, request: BridgeRequest) -> Outcome:
        return await self.answer()


@pytest.fixture
async def served() -> AsyncIterator[tuple[HttpBridgeServer, Sink, aiohttp.ClientSession]]:
    sink = Sink()
    server = HttpBridgeServer(sink, host="127.0.0.1", port=0, key="k", timeout=0.3)
    await server.start()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        try:
            yield server, sink, client
        finally:
            await server.stop()


async def _post(server: HttpBridgeServer, client: aiohttp.ClientSession) -> tuple[int, str, str | None]:
    url = f"http://127.0.0.1:{server.port}{V1_PATH}"
    async with client.post(url, json=BODY, params={"code": "k"}) as response:
        return response.status, await response.text(), response.headers.get("Retry-After")


async def test_answers(served: tuple[HttpBridgeServer, Sink, aiohttp.ClientSession]) -> None:
    server, sink, client = served
    assert await _post(server, client) == (200, '{"outcome": "kept"}', None)

    async def full() -> Outcome:
        raise BackPressure("outbox full", retry_after=30)

    sink.answer = full
    assert await _post(server, client) == (503, "outbox full", "30")

    async def forbidden() -> Outcome:
        raise Forbidden("no credentials for dev-1")

    sink.answer = forbidden
    assert (await _post(server, client))[:2] == (403, "no credentials for dev-1")

    async def broken() -> Outcome:
        raise RuntimeError("bug")

    sink.answer = broken
    assert (await _post(server, client))[0] == 500


async def test_data_not_safe_in_time_is_503_and_stop_cancels_it(
    served: tuple[HttpBridgeServer, Sink, aiohttp.ClientSession],
) -> None:
    server, sink, client = served
    never = asyncio.Event()

    async def stuck() -> Outcome:
        try:
            await never.wait()
        finally:
            sink.cancelled.set()
        return Outcome.PUBLISHED

    sink.answer = stuck
    status, _, retry_after = await _post(server, client)
    assert (status, retry_after) == (503, "5")
    assert not sink.cancelled.is_set()  # the delivery goes on after the answer (into the outbox, say)
    await server.stop()
    assert sink.cancelled.is_set()
