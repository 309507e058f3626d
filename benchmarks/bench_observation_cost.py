"""IoT Central messages per device per hour with the shipped codecs (issue 13 §3).

One process: the emulator (IoT Central over TLS MQTT), the real translator with `codecs/`, and simulated
LwM2M 1.2 clients (`SimulatorOptions(attributes=True)`: notifications follow the written attributes, and a
composite observation notifies every member whenever any member fires, as the real 1.2 client does).
Each device holds every object a shipped codec maps (3, 4, 5, 6, 3300, 3303, 3304, 3311, 3313, 3323,
3328); once a second every numeric telemetry value moves a little (a busy device: sensors drifting, radio
figures jittering, the minimum/maximum following new extremes; identifiers, states and counters stay).
Counted in the emulator: telemetry messages and reported-property patches, during the registration (until
the set-up settled) and over the measured window, extrapolated to an hour.

IoT Central bills and throttles by message: its Standard tiers include 5,000 or 30,000 messages per device
per month (https://azure.microsoft.com/pricing/details/iot-central/), about 7 or 41 an hour.

    python -m benchmarks.bench_observation_cost [--devices 2] [--seconds 60] [--label after]

The window is shorter than the codecs' pmax (300 s and more): heartbeats of steady values are not in it
(a busy device's values are never steady anyway). Results: benchmarks/results/observation_cost-<label>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.app import Emulator
from emulator.config import EmulatorConfig
from translator.coap import CoapSettings
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.codec import Property, Telemetry, load_codec
from translator.lwm2m import ObjectRegistry, ResourceType, Value
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import Translator
from translator.settings import CodecSettings, IotcSettings, OperationsSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
GROUP_KEY = "dGVzdC1ncm91cC1rZXktZm9yLWJlbmNobWFya3MtMDAwMDAwMDAwMDAwMDA="


def device_values(registry: ObjectRegistry) -> tuple[dict[Lwm2mPath, Value], list[Lwm2mPath]]:
    """Every resource the shipped codecs map, instance 0, with a plausible value; and which of them move:
    the measurements (numeric telemetry the codec gave a pmin), and minimum/maximum measured with them."""
    values: dict[Lwm2mPath, Value] = {}
    moving: list[Lwm2mPath] = []
    for file in sorted((ROOT / "codecs").glob("*.toml")):
        codec = load_codec(file, registry)
        entries: list[Telemetry | Property] = [*codec.telemetry, *codec.properties]
        for entry in entries:
            path = entry.pattern.concrete(0)
            if entry.resource.multiple:
                path = path.child(0)
            kind = entry.resource.type
            value: Value
            if kind in (ResourceType.FLOAT,):
                value = round(random.uniform(10, 50), 2)
            elif kind in (ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER):
                value = random.randint(10, 90)
            elif kind is ResourceType.BOOLEAN:
                value = False
            elif kind is ResourceType.TIME:
                value = int(time.time())
            elif kind is ResourceType.OPAQUE:
                value = b"\x01"
            else:
                value = f"{entry.name}-1"
            values[path] = value
            numeric = kind in (ResourceType.FLOAT, ResourceType.INTEGER, ResourceType.UNSIGNED_INTEGER)
            if isinstance(entry, Telemetry) and numeric and entry.observe.pmin is not None:
                moving.append(path)
    return values, moving


def drift(device: SimulatedDevice, moving: list[Lwm2mPath], rng: random.Random) -> None:
    """One second of a busy device: each moving value takes a small step; minimum and maximum measured
    (5601/5602) follow the sensor value (5700) when it reaches a new extreme."""
    for path in moving:
        old = device.values[path]
        assert isinstance(old, int | float)
        if isinstance(old, float):
            new: Value = round(old + rng.uniform(-0.3, 0.3), 2)
        else:
            new = max(0, old + rng.choice((-1, 0, 1)))
        device.set_value(path, new)
        if len(path) == 3 and path[2] == 5700:
            assert isinstance(new, float)
            low, high = Lwm2mPath(path[0], path[1], 5601), Lwm2mPath(path[0], path[1], 5602)
            if low in device.values and new < float(device.values[low]):  # type: ignore[arg-type]
                device.set_value(low, new)
            if high in device.values and new > float(device.values[high]):  # type: ignore[arg-type]
                device.set_value(high, new)


def counts(emulator: Emulator, device_id: str) -> tuple[int, int]:
    """(telemetry messages, reported patches) the emulator received from the device so far."""
    telemetry = len(emulator.hub.telemetry.since(0, device_id))
    device = emulator.application.device(device_id)
    patches = device.twin.reported_version if device is not None else 0
    return telemetry, patches


async def settle(
    emulator: Emulator, device_ids: list[str], ready: Callable[[], bool], quiet: float, bound: float
) -> None:
    """Wait until `ready` (connected, observing) and no count moved for `quiet` seconds (set-up done);
    polling, since "nothing more arrives" has no event; at most `bound` seconds."""
    last = [counts(emulator, d) for d in device_ids]
    still = time.monotonic()
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = [counts(emulator, d) for d in device_ids]
        if now != last or not ready():
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            return


async def run(devices: int, seconds: float) -> dict[str, Any]:
    registry = ObjectRegistry.builtin()
    rng = random.Random(13)
    random.seed(13)
    with tempfile.TemporaryDirectory() as work:
        config = EmulatorConfig(
            state_dir=Path(work) / "emulator",
            mqtt_port=0,
            http_port=0,
            https_port=0,
            id_scope="0neBENCH001",
            group_primary_key=GROUP_KEY,
            group_secondary_key=GROUP_KEY,
            dps_assign_delay=0.0,
            limits=False,  # measures the translator's cost, not IoT Hub's throttles
        ).validated()
        async with Emulator(config) as emulator:
            assert emulator.tls is not None
            settings = Settings(
                state_dir=Path(work) / "translator",
                coap=CoapSettings(
                    host="127.0.0.1", port=0, grace=0.0, dtls_port=0, insecure_auto_register=True
                ),
                iotc=IotcSettings(
                    id_scope=config.id_scope,
                    group_key=GROUP_KEY,
                    dps_host="127.0.0.1",
                    dps_port=emulator.mqtt_port,
                    hub_port=emulator.mqtt_port,
                    ca_file=Path(emulator.tls.ca_path),
                    gateway_host="127.0.0.1",
                    dps_registrations_per_minute=0,
                    telemetry_rate=0,
                    device_telemetry_rate=0,
                    twin_update_rate=0,
                ),
                codec=CodecSettings(directory=ROOT / "codecs"),
                operations=OperationsSettings(port=0),
            )
            translator = Translator(settings)
            await translator.start()
            try:
                assert translator.coap is not None
                server = ("127.0.0.1", translator.coap.port)
                fleet: list[tuple[SimulatedDevice, list[Lwm2mPath]]] = []
                for index in range(devices):
                    values, moving = device_values(registry)
                    options = SimulatorOptions(version="1.2", attributes=True, lifetime=3600)
                    device = SimulatedDevice(f"bench-obs-{index}", server, options=options, values=values)
                    await device.start()
                    response = await device.register()
                    assert response.code.is_successful(), response
                    fleet.append((device, moving))
                ids = [device.endpoint for device, _ in fleet]

                def ready() -> bool:
                    connected = all(d in emulator.hub.sessions for d in ids)
                    return connected and all(device.observed for device, _ in fleet)

                await settle(emulator, ids, ready, quiet=3.0, bound=60.0)
                registration = [counts(emulator, d) for d in ids]
                started = time.monotonic()
                while time.monotonic() - started < seconds:
                    for device, moving in fleet:
                        drift(device, moving, rng)
                    await asyncio.sleep(1.0)
                await asyncio.sleep(1.0)  # the last notifications land
                elapsed = time.monotonic() - started
                final = [counts(emulator, d) for d in ids]
                notifications = sum(device.notifications for device, _ in fleet)
                for device, _ in fleet:
                    await device.close()
            finally:
                await translator.stop()
    telemetry = [f[0] - r[0] for f, r in zip(final, registration, strict=True)]
    patches = [f[1] - r[1] for f, r in zip(final, registration, strict=True)]
    per_hour = 3600.0 / elapsed
    return {
        "devices": devices,
        "seconds": round(elapsed, 1),
        "objects": sorted({p[0] for p in device_values(registry)[0]}),
        "registration": {
            "telemetry_per_device": sum(r[0] for r in registration) / devices,
            "reported_patches_per_device": sum(r[1] for r in registration) / devices,
        },
        "per_device_per_hour": {
            "telemetry": round(sum(telemetry) / devices * per_hour),
            "reported_patches": round(sum(patches) / devices * per_hour),
            "messages": round((sum(telemetry) + sum(patches)) / devices * per_hour),
            "coap_notifications": round(notifications / devices * per_hour),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = {"label": args.label, **asyncio.run(run(args.devices, args.seconds))}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"observation_cost-{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
