"""Cost of device sessions: connect-all time, RSS per session, idle CPU, spread QoS 1 publish rate.

    python -m benchmarks.bench_sessions --sessions 1000 --transport lean --broker emulator
    python -m benchmarks.bench_sessions --sessions 10000 --transport aiomqtt --broker mosquitto
    python -m benchmarks.bench_sessions --transport gmqtt   # pip install -e '.[bench]' first

The broker runs in its own process (the emulator, or a local mosquitto with TLS, installed from Debian if
absent), so client and broker costs are told apart; both share this machine's cores. Sessions are full
`DeviceSession`s in a `SessionPool` with assignments cached (no DPS), each over its own TLS connection.
Results go to benchmarks/results/sessions-<broker>-<transport>-<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._measure import CpuMeter, percentile, rss_bytes
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.dps_client import DpsEndpoint
from translator.iotc.client.pool import DeviceSpec, MemoryAssignments, PoolSettings, SessionPool
from translator.iotc.client.session import HubEndpoint, SessionSettings
from translator.iotc.client.transport import MessageHandler, MqttTransport
from translator.iotc.protocol.backoff import BackoffPolicy
from translator.iotc.protocol.dps import Assigned

RESULTS = Path(__file__).resolve().parent / "results"
HUB = "localhost"  # one name for both brokers' certificates and for paho, which verifies the name it dials
GROUP_KEY = base64.b64encode(b"bench-group-key-" * 4).decode()


class CandidatePool(SessionPool):
    """The pool with one more transport to measure: gmqtt (benchmarks/gmqtt_transport.py)."""

    def transport_factory(self, on_message: MessageHandler) -> MqttTransport:
        if self.settings.transport == "gmqtt":
            from benchmarks.gmqtt_transport import GmqttTransport

            return GmqttTransport(on_message)
        return super().transport_factory(on_message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def seed_emulator_state(state_dir: Path, device_ids: list[str]) -> None:
    """Devices already provisioned on HUB, so the benchmark measures sessions, not DPS."""
    from emulator.state import Application, Device, save_application

    application = Application("0neBENCH001", GROUP_KEY, GROUP_KEY)
    for device_id in device_ids:
        application.devices[device_id] = Device(device_id, provisioned=True, assigned_hub=HUB)
    save_application(state_dir, application)


async def start_emulator(state_dir: Path, port: int, count: int) -> tuple[asyncio.subprocess.Process, Path]:
    seed_emulator_state(state_dir, [f"bench-{index:06d}" for index in range(count)])
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "emulator", "--state-dir", str(state_dir), "--mqtt-port", str(port)),
        *(
            "--http-port",
            "0",
            "--https-port",
            "0",
            "--hub-names",
            HUB,
            "--log-level",
            "WARNING",
            "--no-limits",
        ),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    ready = json.loads(line)
    return process, Path(ready["caPath"])


def ensure_mosquitto() -> str:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        subprocess.run(["apt-get", "install", "-y", "-qq", "mosquitto"], check=True, timeout=600)
    return binary


async def start_mosquitto(work: Path, port: int) -> tuple[asyncio.subprocess.Process, Path]:
    from emulator.certs import ensure_server_tls

    tls = ensure_server_tls(work / "tls", [HUB])
    config = work / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {tls.ca_path}\ncertfile {tls.cert_path}\nkeyfile {tls.key_path}\n"
        # As root, mosquitto would switch to its own user, which cannot read our 0600 key.
        "user root\nallow_anonymous true\nmax_connections -1\nlog_type error\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 10000\n"
    )
    process = await asyncio.create_subprocess_exec(ensure_mosquitto(), "-c", str(config))
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return process, tls.ca_path


async def run(args: argparse.Namespace) -> dict[str, Any]:
    count: int = args.sessions
    fd_limit = raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    port = free_port()
    if args.broker == "emulator":
        broker, ca = await start_emulator(work / "emulator", port, count)
    else:
        broker, ca = await start_mosquitto(work, port)
    device_ids = [f"bench-{index:06d}" for index in range(count)]
    assignments = MemoryAssignments({device_id: Assigned(HUB, device_id) for device_id in device_ids})
    pool = CandidatePool(
        dps=DpsEndpoint("unused"),
        hub=HubEndpoint(gateway_host="127.0.0.1", port=port, ca_file=ca),
        settings=PoolSettings(
            connect_rate=args.connect_rate,
            connect_burst=100,
            transport=args.transport,
            telemetry_rate=0,  # the broker has no quotas here: only connects are paced, as asked
            device_telemetry_rate=0,
        ),
        session_settings=SessionSettings(
            keep_alive=args.keep_alive, backoff=BackoffPolicy(base=0.5, cap=5.0), connect_timeout=120
        ),
        assignments=assignments,
    )
    result: dict[str, Any] = {
        "benchmark": "sessions",
        "broker": args.broker,
        "transport": args.transport,
        "sessions": count,
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "fd_limit": fd_limit},
    }
    client_cpu = CpuMeter()
    broker_cpu = CpuMeter(broker.pid)
    try:
        gc.collect()
        rss_before = rss_bytes()
        client_cpu.start()
        broker_cpu.start()
        sessions = []
        for device_id in device_ids:
            key = SymmetricKey.from_group(GROUP_KEY, device_id)
            sessions.append(await pool.session(DeviceSpec(device_id, key)))
        async with asyncio.timeout(args.connect_timeout):
            await asyncio.gather(*(session.wait_connected(args.connect_timeout) for session in sessions))
        client_seconds, wall = client_cpu.stop()
        broker_seconds, _ = broker_cpu.stop()
        gc.collect()
        rss_after = rss_bytes()
        result["connect"] = {
            "seconds": round(wall, 2),
            "per_second": round(count / wall, 1),
            "client_cpu_ms_per_connect": round(client_seconds * 1000 / count, 3),
            "broker_cpu_ms_per_connect": round(broker_seconds * 1000 / count, 3),
        }
        result["rss"] = {
            "client_bytes_per_session": round((rss_after - rss_before) / count),
            "client_total_mb": round(rss_after / 2**20, 1),
            "broker_bytes_per_session": round(rss_bytes(broker.pid) / count),
        }

        client_cpu.start()
        broker_cpu.start()
        await asyncio.sleep(args.idle)
        client_seconds, wall = client_cpu.stop()
        broker_seconds, _ = broker_cpu.stop()
        result["idle"] = {
            "seconds": round(wall, 1),
            "client_core_percent": round(100 * client_seconds / wall, 2),
            "broker_core_percent": round(100 * broker_seconds / wall, 2),
        }

        per_session = max(1, args.messages // count)
        latencies: list[float] = []
        payload = json.dumps({"temperature": 21.5, "humidity": 40}).encode()

        async def publisher(session: Any) -> None:
            for _ in range(per_session):
                started = time.perf_counter()
                await session.send_telemetry(payload, timeout=120)
                latencies.append(time.perf_counter() - started)

        client_cpu.start()
        broker_cpu.start()
        await asyncio.gather(*(publisher(session) for session in sessions))
        client_seconds, wall = client_cpu.stop()
        broker_seconds, _ = broker_cpu.stop()
        sent = per_session * count
        latencies.sort()
        result["publish"] = {
            "messages": sent,
            "per_second": round(sent / wall),
            "client_cpu_us_per_message": round(client_seconds * 1e6 / sent, 1),
            "broker_cpu_us_per_message": round(broker_seconds * 1e6 / sent, 1),
            "latency_ms": {
                "p50": round(percentile(latencies, 0.5) * 1000, 2),
                "p99": round(percentile(latencies, 0.99) * 1000, 2),
            },
        }
        metrics = pool.metrics()
        result["pool"] = {key: value for key, value in metrics.items() if value}
    finally:
        await pool.close()
        broker.terminate()
        try:
            await asyncio.wait_for(broker.wait(), 10)
        except TimeoutError:
            broker.kill()
            await broker.wait()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--transport", choices=["lean", "aiomqtt", "gmqtt"], default="lean")
    parser.add_argument("--broker", choices=["emulator", "mosquitto"], default="emulator")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measurement")
    parser.add_argument("--messages", type=int, default=20000, help="QoS 1 messages spread over the sessions")
    parser.add_argument("--connect-rate", type=float, default=2000.0)
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--keep-alive", type=int, default=300)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"sessions-{args.broker}-{args.transport}-{args.sessions}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
