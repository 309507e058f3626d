"""`bench_throughput --workers N` (issue 17 §9): does a worker of `serve --workers N` cost what one translator
costs per message?

Two runs in one invocation, against the same emulator (its own process, limits off) and the same
redis-server (AOF, appendfsync always — what a cluster needs), with fresh load-generator devices each:
`serve` on Redis alone (workers = 1), then `serve --workers N`, both unpaced. Each run registers the
devices, waits for every hub session, warms up, saturates (closed loop, `--window` CONs in flight per
device) for `--duration` seconds, then paces `--worker-rate` Sends/s per translator process (open loop:
the same load on each process in both runs, where saturation spreads the machine's capacity over N).
Per worker and window: CPU seconds from /proc divided by the Sends that worker answered in it (the
window's ACKs × the worker's share of `iotc_translator_messages_in_total{source="send"}` from the
supervisor's /metrics/workers); the goal is every worker within 10 % of the lone translator's µs per
message. Nothing is pinned: N workers, the emulator and the load generator share the machine's cores, so
messages/s in total measures the machine as much as the translator (the emulator costs about as much per
message).

Results: benchmarks/results/throughput-workers<N>-<devices>.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from time import perf_counter
from typing import Any

from benchmarks._translator import emulator_env, http_json, wait_healthy
from benchmarks.bench_throughput import (
    LoadGenerator,
    Snapshot,
    Stack,
    free_port,
    prometheus,
    start_hub,
    stop_process,
    window_figures,
)

GOAL = 0.10  # a worker's µs per message within 10 % of one translator's
SEND = 'iotc_translator_messages_in_total{source="send"'


def start_redis(stack: Stack) -> str:
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise RuntimeError("redis-server is not installed (apt redis-server)")
    port = free_port()
    data = stack.work / "redis"
    data.mkdir()
    command = [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    command += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    process, out = stack.spawn("redis", command, None)
    deadline = time.monotonic() + 10
    while "Ready to accept connections" not in out.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start: {out.read_text()[-2000:]}")
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def start_serve(
    stack: Stack, args: argparse.Namespace, emulator: dict[str, Any], redis_url: str, workers: int
) -> tuple[Any, int, str]:
    coap_port = free_port(socket.SOCK_DGRAM)
    ops_port = free_port()
    env = {
        "IOTC_TRANSLATOR_STATE_DIR": str(stack.work / f"translator-{workers}"),
        "IOTC_TRANSLATOR_LOG_LEVEL": args.translator_log_level,
        "IOTC_TRANSLATOR_WORKERS": str(workers),
        "IOTC_TRANSLATOR_STORE_REDIS_URL": redis_url,
        "IOTC_TRANSLATOR_STORE_REDIS_PREFIX": f"bench-{workers}:",  # each run its own devices
        "IOTC_TRANSLATOR_COAP_HOST": "127.0.0.1",
        "IOTC_TRANSLATOR_COAP_PORT": str(coap_port),
        "IOTC_TRANSLATOR_COAP_DTLS_PORT": "0",  # not 5684: the machine may hold it
        "IOTC_TRANSLATOR_OPERATIONS_PORT": str(ops_port),
        **emulator_env(emulator, args.connect_rate, args.max_sessions),
    }
    command = [sys.executable, "-m", "translator.cli", "serve"]
    process, out = stack.spawn(f"translator-{workers}", command, None, env)
    ops = f"http://127.0.0.1:{ops_port}"
    wait_healthy(process, out, ops, 120, "serve")
    return process, coap_port, ops


def worker_pids(health: dict[str, Any], process_pid: int) -> dict[str, int]:
    """Each translator process by name: the workers of a supervisor, or the lone translator as "w0"."""
    workers = health.get("workers")
    if workers is None:
        return {"w0": process_pid}
    return {f"w{worker['worker']}": int(worker["pid"]) for worker in workers}


def connected(health: dict[str, Any]) -> int:
    workers = health.get("workers")
    views = workers if workers is not None else [health]
    return sum(int(view.get("sessions", {}).get("connected", 0)) for view in views)


def sends_by_worker(metrics: dict[str, float]) -> dict[str, float]:
    """`w<i>` → Sends answered: the per-worker series of /metrics/workers, or the lone translator's."""
    found: dict[str, float] = {}
    for name, value in metrics.items():
        if name.startswith(SEND):
            match = re.search(r'worker="(\d+)"', name)
            found[f"w{match.group(1)}" if match else "w0"] = value
    return found


async def phase(
    gen: LoadGenerator,
    pids: dict[str, int],
    metrics_path: str,
    window: Coroutine[Any, Any, tuple[Snapshot, Snapshot]],
) -> dict[str, Any]:
    """One measured window: messages/s, and each worker's CPU µs per Send it answered."""
    before = await asyncio.to_thread(prometheus, metrics_path)
    first, last = await window
    after = await asyncio.to_thread(prometheus, metrics_path)
    # The metrics are read before the warm-up and after the drain around the CPU window: they give each
    # worker's share of the Sends; the window's Sends are the ACKs the load generator counted in it.
    counted = {k: v - sends_by_worker(before).get(k, 0.0) for k, v in sends_by_worker(after).items()}
    figures = window_figures(first, last)
    total = sum(counted.values()) or 1.0
    per_worker = {}
    for name in pids:
        cpu = last.cpu[name] - first.cpu[name]
        share = counted.get(name, 0.0) / total
        handled = figures["acked"] * share
        per_worker[name] = {
            "sends": int(handled),
            "share": round(share, 3),
            "cpu_seconds": round(cpu, 3),
            "us_per_msg": round(cpu * 1e6 / handled, 1) if handled else None,
            "core_percent": round(100 * cpu / figures["seconds"], 1),
        }
    return {
        "msg_per_s": figures["msg_per_s"],
        "seconds": figures["seconds"],
        "acked": figures["acked"],
        "per_worker": per_worker,
        "cpu": figures["cpu"],
        "udp": figures["udp"],
    }


async def one_run(  # noqa: PLR0917
    stack: Stack,
    args: argparse.Namespace,
    emulator: tuple[Any, dict[str, Any]],
    redis_url: str,
    workers: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    emulator_process, coordinates = emulator
    process, coap_port, ops = start_serve(stack, args, coordinates, redis_url, workers)
    metrics_path = f"{ops}/metrics/workers" if workers > 1 else f"{ops}/metrics"
    gen: LoadGenerator | None = None
    try:
        health = await asyncio.to_thread(http_json, f"{ops}/healthz")
        pids = worker_pids(health, process.pid)
        tracked: dict[str, int | str] = {**pids, "emulator": emulator_process.pid, "loadgen": "self"}
        if workers > 1:
            tracked["supervisor"] = process.pid
        gen = LoadGenerator(args.devices, ("127.0.0.1", coap_port), echo=False, pids=tracked)
        await gen.open()
        log(f"workers={workers}: registering {args.devices} devices")
        await gen.register_all(args.register_window, args.lifetime, args.register_timeout)
        deadline = perf_counter() + args.register_timeout
        while connected(health) < args.devices:
            if perf_counter() > deadline:
                raise RuntimeError(f"only {connected(health)} sessions connected: {health}")
            await asyncio.sleep(0.5)
            health = await asyncio.to_thread(http_json, f"{ops}/healthz")
        await asyncio.sleep(1.0)  # the last set-up downlinks and reported properties
        await gen.saturate(1, 0.0, args.warmup)
        result: dict[str, Any] = {"workers": workers}
        result["saturation"] = await phase(
            gen, pids, metrics_path, gen.saturate(args.window, args.warmup, args.duration)
        )
        rate = args.worker_rate * workers
        result["paced"] = await phase(gen, pids, metrics_path, gen.paced(rate, 1.0, args.duration))
        result["paced"]["target_msg_per_s"] = rate
        result["lost"] = gen.lost
        result["other_codes"] = {f"{c >> 5}.{c & 31:02d}": n for c, n in gen.codes.items()}
        for name in ("saturation", "paced"):
            log(f"  {name}: {result[name]['msg_per_s']} msg/s; per worker {result[name]['per_worker']}")
        return result
    finally:
        if gen is not None:
            gen.close()
        stop_process(process, timeout=30)


def verdict(single: dict[str, Any], several: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("saturation", "paced"):
        base = single[name]["per_worker"]["w0"]["us_per_msg"]
        ratios = {
            worker: round(figures["us_per_msg"] / base, 3)
            for worker, figures in several[name]["per_worker"].items()
            if figures["us_per_msg"] and base
        }
        found[name] = {
            "one_translator_us_per_msg": base,
            "worker_over_one": ratios,
            "within_10_percent": bool(ratios) and all(abs(r - 1) <= GOAL for r in ratios.values()),
            "total_msg_per_s": {"one": single[name]["msg_per_s"], "several": several[name]["msg_per_s"]},
        }
    return found


async def orchestrate_workers(args: argparse.Namespace) -> dict[str, Any]:
    def log(message: str) -> None:
        print(message, flush=True)

    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-workers-")), None, None)
    started = perf_counter()
    report: dict[str, Any] = {
        "benchmark": "throughput-workers",
        "devices": args.devices,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "pinning": "none: the workers, the emulator and the load generator share the cores",
        },
        "settings": {
            "window": args.window,
            "duration": args.duration,
            "warmup": args.warmup,
            "worker_rate": args.worker_rate,
        },
    }
    try:
        redis_url = start_redis(stack)
        emulator = start_hub(stack, args)
        single = await one_run(stack, args, emulator, redis_url, 1, log)
        several = await one_run(stack, args, emulator, redis_url, args.workers, log)
        report["runs"] = {"workers_1": single, f"workers_{args.workers}": several}
        report["verdict"] = verdict(single, several)
    finally:
        stack.stop_all()
        if args.keep_work:
            log(f"work directory kept: {stack.work}")
        else:
            shutil.rmtree(stack.work, ignore_errors=True)
    report["wall_seconds"] = round(perf_counter() - started, 1)
    return report


def workers_table(report: dict[str, Any]) -> str:
    lines = [
        "| run | phase | msg/s | process | Sends | CPU µs/msg | % of a core |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in report["runs"].items():
        for phase_name in ("saturation", "paced"):
            figures = run[phase_name]
            for process, worker in figures["per_worker"].items():
                lines.append(
                    f"| {name} | {phase_name} | {figures['msg_per_s']} | {process} | {worker['sends']} "
                    f"| {worker['us_per_msg']} | {worker['core_percent']} |"
                )
    for phase_name, found in report["verdict"].items():
        met = "met" if found["within_10_percent"] else "NOT met"
        lines.append(f"{phase_name}: worker / one translator {found['worker_over_one']} (±10 %: {met})")
    with contextlib.suppress(KeyError):
        emulator = {n: r["saturation"]["cpu"]["emulator"]["us_per_msg"] for n, r in report["runs"].items()}
        lines.append(f"emulator µs/msg at saturation: {emulator}")
    return "\n".join(lines)
