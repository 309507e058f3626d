"""What a device cannot get past, end to end (real translator, real emulator, real UDP): values JSON cannot
carry, times no calendar holds, and a registration too big for an IoT Central device template. Each is a
4.00 that names the problem, once, instead of `null`/`NaN` published or a 5.00 the device retries forever."""

from __future__ import annotations

import math
import time
from typing import Any

import aiocoap
import aiohttp
import cbor2
from aiocoap.numbers.codes import Code as AioCode
from prometheus_client.parser import text_string_to_metric_families

from emulator.app import Emulator
from tests.conftest import RestClient
from tests.e2e.conftest import STEP, log_position, send_at, session_connected, simulated, telemetry_matching
from translator.coap.simulator import SimulatedDevice
from translator.lwm2m import ContentFormat
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator

TEMPERATURE = Lwm2mPath(3303, 0, 5700)


async def _post(device: SimulatedDevice, path: str, content_format: int, payload: bytes, **opts: Any) -> Any:
    message = aiocoap.Message(
        code=AioCode.POST, uri=device._uri(path), content_format=content_format, payload=payload
    )
    for name, value in opts.items():
        setattr(message.opt, name, value)
    return await device._send(message, timeout=STEP)


async def _refused_metric(translator: Translator) -> dict[tuple[str, str], float]:
    assert translator.ops is not None
    url = f"http://127.0.0.1:{translator.ops.port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    return {
        (sample.labels["code"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "iotc_translator_coap_refused_total"
    }


def _representable(value: object) -> bool:
    """No null, no NaN, no infinity: what a refused record would have left behind."""
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


async def test_nan_infinity_and_impossible_times_are_refused_naming_the_record(
    emulator: Emulator, rest: RestClient, translator: Translator
) -> None:
    now = time.time()
    refused = {
        # SenML CBOR: RFC 8428 labels 0 = n, 2 = v, 6 = t
        "SenML CBOR inf": (
            "dp",
            ContentFormat.SENML_CBOR,
            cbor2.dumps([{0: "/3303/0/5700", 2: 20.0}, {0: "/3303/0/5700", 2: math.inf}]),
            "record 1 (/3303/0/5700)",
        ),
        "LwM2M CBOR NaN": (
            "dp",
            ContentFormat.LWM2M_CBOR,
            cbor2.dumps({3303: {0: {5700: math.nan}}}),
            "record 0 (/3303/0/5700)",
        ),
        "SenML JSON overflowing to inf": (
            "dp",
            ContentFormat.SENML_JSON,
            b'[{"n":"/3303/0/5700","v":1e999}]',
            "record 0 (/3303/0/5700)",
        ),
        "SenML time 1e20": (
            "dp",
            ContentFormat.SENML_JSON,
            b'[{"n":"/3303/0/5700","v":21.5,"t":1e20}]',
            "not between 1970 and 9999",
        ),
        "SenML time -1e20": (
            "dp",
            ContentFormat.SENML_CBOR,
            cbor2.dumps([{0: "/3303/0/5700", 2: 21.5, 6: -1e20}]),
            "not between 1970 and 9999",
        ),
        "ingest NaN": ("ingest", 60, cbor2.dumps({"level": math.nan, "t": now}), "reading 0 'level'"),
        "ingest time 1e20": ("ingest", 60, cbor2.dumps({"level": 1.0, "t": 1e20}), "not between"),
    }
    async with simulated(translator, "limits-1") as device:
        await session_connected(translator, "limits-1")
        start = await log_position(rest)
        for name, (path, cf, payload, named) in refused.items():
            opts = {"uri_query": ("ep=limits-ingest",)} if path == "ingest" else {}
            response = await _post(device, path, cf, payload, **opts)
            diagnostic = response.payload.decode()
            assert response.code == AioCode.BAD_REQUEST, (name, response.code, diagnostic)
            assert named in diagnostic, (name, diagnostic)
        # A good Send after them arrives; nothing before it did (no null, no NaN), from either device.
        await send_at(device, [(TEMPERATURE, 22.5, float(int(now)))])
        await telemetry_matching(rest, "limits-1", lambda e: e["body"] == {"temperature": 22.5}, after=start)
        log = await rest.get(f"/emulator/telemetry?after={start}")
        assert [e["body"] for e in log["value"] if e["deviceId"] != "limits-1"] == []
        for event in log["value"]:  # the set-up's own values (strings among them) may land here too
            assert all(_representable(v) for v in event["body"].values()), event
        counts = await _refused_metric(translator)
        assert counts[("4.00", "UnrepresentableValue")] == len(refused)


async def test_a_register_too_big_for_a_device_template_is_refused_once(
    emulator: Emulator, translator: Translator
) -> None:
    # Every object instance is a component of the template's root interface; DTDL v2 allows 300 contents.
    values = {Lwm2mPath(3303, i, 5700): 20.0 + i % 10 for i in range(301)}
    async with simulated(translator, "limits-big", register=False, values=values) as device:
        response = await device.register()
        diagnostic = response.payload.decode()
        assert response.code == AioCode.BAD_REQUEST, (response.code, diagnostic)
        assert "limits-big" in diagnostic and "300" in diagnostic, diagnostic
        assert translator.coap is not None and translator.coap.registration("limits-big") is None
    # 300 instances fit (the root interface holds exactly 300 components) and are served.
    values = {Lwm2mPath(3303, i, 5700): 20.0 for i in range(300)}
    async with simulated(translator, "limits-300", values=values) as device:
        await session_connected(translator, "limits-300")
        response = await device.send([TEMPERATURE])
        assert response.code == AioCode.CHANGED, (response.code, response.payload)
