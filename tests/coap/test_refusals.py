"""Refusals over real UDP, on the hot path and on aiocoap's: values JSON cannot carry and objects no
device template holds are 4.00 naming the problem, nothing reaches the sink, and each is counted once."""

from __future__ import annotations

import math
from dataclasses import replace

import cbor2
import pytest

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, UdpClient
from translator.coap import Lwm2mServer
from translator.coap.errors import Code
from translator.lwm2m import RegisteredObjects


def _at_most_two_instances(objects: RegisteredObjects) -> str | None:
    return "more than 2 object instances" if len(objects.instances) > 2 else None


@pytest.mark.parametrize("hot_path", [True, False], ids=["hot", "aiocoap"])
async def test_refused_once_counted_once(hot_path: bool, sink: RecordingSink) -> None:
    refused: list[tuple[int, str]] = []
    settings = replace(FAST, hot_path=hot_path)
    async with Lwm2mServer(
        settings,
        sink,
        objects_check=_at_most_two_instances,
        on_refused=lambda code, kind: refused.append((code, kind)),
    ) as server:
        client = await UdpClient.connect(server.port)
        try:
            reply = await client.request(
                Code.POST, ["rd"], query=["ep=big", "lwm2m=1.1"], content_format=40,
                payload=b"</3/0>,</3303/0>,</3303/1>",
            )  # fmt: skip
            assert reply.code == Code.BAD_REQUEST
            assert reply.payload == b"endpoint big: more than 2 object instances"
            assert server.registration("big") is None and not sink.registered
            reply = await client.request(
                Code.POST, ["rd"], query=["ep=ok", "lwm2m=1.1"], content_format=40,
                payload=b"</3/0>,</3303/0>",
            )  # fmt: skip
            assert reply.code == Code.CREATED
            nan_send = cbor2.dumps([{0: "/3303/0/5700", 2: 21.5}, {0: "/3303/0/5700", 2: math.nan}])
            reply = await client.request(Code.POST, ["dp"], content_format=112, payload=nan_send)
            assert reply.code == Code.BAD_REQUEST
            assert reply.payload == b"SENML_CBOR: record 1 (/3303/0/5700): nan is not a finite number"
            reply = await client.request(
                Code.POST, ["ingest"], query=["ep=s1"], content_format=60,
                payload=cbor2.dumps([{"level": 1.0}, {"level": -math.inf}]),
            )  # fmt: skip
            assert reply.code == Code.BAD_REQUEST
            assert reply.payload == b"ingest: reading 1 'level': -inf is not a finite number"
            assert sink.batches == []
            assert refused == [
                (Code.BAD_REQUEST, "BadRequest"),
                (Code.BAD_REQUEST, "UnrepresentableValue"),
                (Code.BAD_REQUEST, "UnrepresentableValue"),
            ]
        finally:
            client.close()
