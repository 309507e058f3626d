from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.coap.support import RecordingSink
from translator.coap import CoapSettings, Lwm2mServer

FAST = CoapSettings(
    host="127.0.0.1",
    port=0,
    grace=0.0,
    tick=0.05,
    request_timeout=3.0,
    composite_timeout=0.6,
    queue_window=0.5,
    queue_deadline=3.0,
    sink_timeout=1.0,
    max_payload=2048,
)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def server(sink: RecordingSink) -> AsyncIterator[Lwm2mServer]:
    async with Lwm2mServer(FAST, sink) as running:
        yield running
