"""Ephemeral devices (issue 19 §2): what one batch costs the translator over each ephemeral transport, and
what N ephemeral devices hold at rest against N persistent sessions.

    python -m benchmarks.bench_ephemeral --batches 300 --batch 1 --idle-devices 10000 --persistent 2000

1. Per batch (a device that wakes every few minutes: each batch opens its own link): the translator
   process's CPU time and the wall time of `EphemeralSession.send_telemetry` calls for a batch, link open to
   link closed, three ways — IoT Hub's HTTPS device API over the hub's shared kept-alive connections
   (`https_warm`: a fleet, whose devices keep them warm), the same API on a fresh TLS connection
   (`https_cold`: a lone device, or an X.509 one) and a short clean MQTT connection (`mqtt`) — alternating
   batch by batch in the same run, so the machine's load (shared) weighs on all alike. A held MQTT session's
   publish is measured alongside for reference.
2. At rest: RSS and CPU of a process holding N ephemeral sessions (each sent one message, its link closed)
   against one holding M persistent MQTT sessions (connected, idle), each in its own process; the per-device
   figures are the growth over the empty process divided by the count.

The emulator runs in its own process (limits off), so its costs are not the translator's. JSON goes to
benchmarks/results/ephemeral.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._measure import CpuMeter, cpu_seconds, percentile, rss_bytes
from benchmarks.bench_sessions import GROUP_KEY, HUB, raise_fd_limit, seed_emulator_state
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.dps_client import DpsEndpoint
from translator.iotc.client.ephemeral import (
    EphemeralSession,
    EphemeralSettings,
    EphemeralUplinks,
    Transport,
)
from translator.iotc.client.pool import DeviceSpec, MemoryAssignments, PoolSettings, SessionPool
from translator.iotc.client.session import HubEndpoint, SessionSettings
from translator.iotc.protocol.backoff import BackoffPolicy
from translator.iotc.protocol.dps import Assigned

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = json.dumps({"temperature": 21.5, "humidity": 40.25}).encode()


def device_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index:06d}" for index in range(count)]


async def start_emulator(
    state_dir: Path, ids: list[str]
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    seed_emulator_state(state_dir, ids)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "emulator", "--state-dir", str(state_dir), "--mqtt-port", "0"),
        *("--http-port", "0", "--https-port", "0", "--hub-names", HUB, "--log-level", "WARNING"),
        *("--no-limits", "--rest-rate-limit", "0"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    ready: dict[str, Any] = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
    return process, ready


def make_pool(ready: dict[str, Any], ids: list[str], connect_rate: float) -> SessionPool:
    return SessionPool(
        dps=DpsEndpoint("unused"),
        hub=HubEndpoint(gateway_host="127.0.0.1", port=ready["mqttPort"], ca_file=Path(ready["caPath"])),
        # The translator's pacers off, as the emulator's limits are: this measures cost, not quotas.
        settings=PoolSettings(
            connect_rate=connect_rate, connect_burst=100, telemetry_rate=0, device_telemetry_rate=0
        ),
        session_settings=SessionSettings(keep_alive=300, backoff=BackoffPolicy(base=0.5, cap=5.0)),
        assignments=MemoryAssignments({device_id: Assigned(HUB, device_id) for device_id in ids}),
    )


def uplinks(pool: SessionPool, ready: dict[str, Any], transport: Transport) -> EphemeralUplinks:
    settings = EphemeralSettings(transport=transport, https_port=ready["httpsPort"], linger=0.0, timeout=30.0)
    return pool.ephemeral_uplinks(settings)


def ephemeral_session(pool: SessionPool, links: EphemeralUplinks, device_id: str) -> EphemeralSession:
    spec = DeviceSpec(device_id, SymmetricKey.from_group(GROUP_KEY, device_id))
    return links.session(device_id, spec.credential, pool.provisioner(spec), None)


async def one_batch(session: EphemeralSession, size: int) -> float:
    """Sends a batch and closes its link; returns when it started (perf_counter)."""
    started = time.perf_counter()
    for _ in range(size):
        await session.send_telemetry(PAYLOAD)
    await session.close()
    return started


async def per_batch(ready: dict[str, Any], batches: int, size: int) -> dict[str, Any]:
    """Transports alternate batch by batch; CPU is summed per transport from /proc around each batch."""
    ids = device_ids("eph", batches)
    pool = make_pool(ready, ids, connect_rate=10_000)
    variants = ("https_warm", "https_cold", "mqtt")
    figures: dict[str, dict[str, list[float]]] = {v: {"cpu": [], "wall": []} for v in variants}
    warm, short = uplinks(pool, ready, "https"), uplinks(pool, ready, "mqtt")
    try:
        await one_batch(ephemeral_session(pool, warm, ids[0]), 1)  # the fleet's connection, already there
        for index, device_id in enumerate(ids):
            shift = index % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                cold = uplinks(pool, ready, "https") if variant == "https_cold" else None
                links = warm if variant == "https_warm" else short if variant == "mqtt" else cold
                assert links is not None
                session = ephemeral_session(pool, links, device_id)
                cpu = time.process_time()
                wall = await one_batch(session, size)
                if cold is not None:
                    await cold.close()  # its TLS connection: torn down as a lone device's would be
                figures[variant]["cpu"].append(time.process_time() - cpu)
                figures[variant]["wall"].append(time.perf_counter() - wall)
        # Reference: the same messages over a held session (connected once, before measuring).
        held = await pool.session(DeviceSpec(ids[0], SymmetricKey.from_group(GROUP_KEY, ids[0])))
        await held.wait_connected(30)
        held_cpu: list[float] = []
        held_wall: list[float] = []
        for _ in range(batches):
            cpu, started = time.process_time(), time.perf_counter()
            for _ in range(size):
                await held.send_telemetry(PAYLOAD)
            held_cpu.append(time.process_time() - cpu)
            held_wall.append(time.perf_counter() - started)
    finally:
        await pool.close()
    result: dict[str, Any] = {}
    for name, series in (*figures.items(), ("held_session", {"cpu": held_cpu, "wall": held_wall})):
        cpu_sorted, wall_sorted = sorted(series["cpu"]), sorted(series["wall"])
        result[name] = {
            "batches": len(cpu_sorted),
            "cpu_us_per_batch_mean": round(statistics.fmean(cpu_sorted) * 1e6),
            "cpu_us_per_batch_p50": round(percentile(cpu_sorted, 0.5) * 1e6),
            "cpu_us_per_message_mean": round(statistics.fmean(cpu_sorted) * 1e6 / size),
            "wall_ms_per_batch_p50": round(percentile(wall_sorted, 0.5) * 1e3, 2),
            "wall_ms_per_batch_p95": round(percentile(wall_sorted, 0.95) * 1e3, 2),
        }
    return result


async def at_rest(kind: str, count: int, idle_seconds: float) -> dict[str, Any]:
    """Run in its own process (`--at-rest KIND`): the emulator, then `count` devices of `kind`, then idle."""
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-ephemeral-"))
    ids = device_ids("rest", count)
    emulator, ready = await start_emulator(work / "emulator", ids)
    pool = make_pool(ready, ids, connect_rate=500)
    try:
        gc.collect()
        empty = rss_bytes()
        started = time.perf_counter()
        held: list[Any] = []
        if kind == "persistent":
            for device_id in ids:
                spec = DeviceSpec(device_id, SymmetricKey.from_group(GROUP_KEY, device_id))
                held.append(await pool.session(spec))
            async with asyncio.timeout(600):
                await asyncio.gather(*(session.wait_connected(600) for session in held))
        else:
            limit = asyncio.Semaphore(32)

            links = uplinks(pool, ready, "https")

            async def wake(device_id: str) -> EphemeralSession:
                session = ephemeral_session(pool, links, device_id)
                async with limit:
                    await session.send_telemetry(PAYLOAD)
                    await session.close()  # its link closed, as after the linger; the object stays
                return session

            held = list(await asyncio.gather(*(wake(device_id) for device_id in ids)))
        setup = time.perf_counter() - started
        gc.collect()
        loaded = rss_bytes()
        meter, emulator_meter = CpuMeter(), CpuMeter(emulator.pid)
        meter.start()
        emulator_meter.start()
        await asyncio.sleep(idle_seconds)
        idle_cpu, idle_wall = meter.stop()
        emulator_cpu, _ = emulator_meter.stop()
        return {
            "kind": kind,
            "devices": count,
            "setup_seconds": round(setup, 1),
            "rss_empty_mb": round(empty / 2**20, 1),
            "rss_loaded_mb": round(loaded / 2**20, 1),
            "rss_kb_per_device": round((loaded - empty) / count / 1024, 2),
            "idle_seconds": idle_seconds,
            "idle_cpu_percent": round(100 * idle_cpu / idle_wall, 3),
            "emulator_idle_cpu_percent": round(100 * emulator_cpu / idle_wall, 3),
            "hub_sessions_held": len(held) if kind == "persistent" else 0,
            "cpu_seconds_total": round(cpu_seconds(), 2),
        }
    finally:
        await pool.close()
        emulator.terminate()
        await emulator.wait()


async def at_rest_in_child(kind: str, count: int, idle: float) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "benchmarks.bench_ephemeral", "--at-rest", kind),
        *("--devices", str(count), "--idle", str(idle)),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        return {"kind": kind, "devices": count, "error": f"exit {child.returncode}"}
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    if args.at_rest:
        return await at_rest(args.at_rest, args.devices, args.idle)
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-ephemeral-"))
    emulator, ready = await start_emulator(work / "emulator", device_ids("eph", args.batches))
    try:
        batch = await per_batch(ready, args.batches, args.batch)
    finally:
        emulator.terminate()
        await emulator.wait()
    result: dict[str, Any] = {
        "benchmark": "ephemeral",
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "batch_size": args.batch,
        "per_batch": batch,
    }
    if args.idle_devices:
        result["at_rest"] = [
            await at_rest_in_child("ephemeral", args.idle_devices, args.idle),
            await at_rest_in_child("persistent", args.persistent, args.idle),
        ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=300, help="batches per transport")
    parser.add_argument("--batch", type=int, default=1, help="messages per batch")
    parser.add_argument(
        "--idle-devices", type=int, default=0, help="ephemeral devices held at rest (0: skip)"
    )
    parser.add_argument("--persistent", type=int, default=2000, help="persistent sessions held at rest")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of rest measured")
    parser.add_argument("--at-rest", choices=("ephemeral", "persistent"), help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "ephemeral.json")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    text = json.dumps(result, indent=2)
    if args.at_rest:
        print(json.dumps(result))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
