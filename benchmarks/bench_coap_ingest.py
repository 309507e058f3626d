"""Telemetry ingest benchmark of the CoAP face: LwM2M Send records per second into the sink, and RSS.

    python -m benchmarks.bench_coap_ingest                 # site / root / hot, 10 s each, + 120 s RSS run
    python -m benchmarks.bench_coap_ingest --modes hot --duration 5 --long 0

The server runs in a child process pinned to CPU 0; the load generator (this process) is pinned to CPU 1
(when there are two). Modes:

* `site` — aiocoap's idiomatic `Site` with a `/dp` resource (the baseline the issue measured);
* `root` — the translator's server with the hot path off (aiocoap + one root resource, no `Site`);
* `hot`  — the translator's server as shipped: the hand-parsed hot path in front of aiocoap.

The load generator registers one endpoint per source port (many ports: one peer is capped by the
16-bit message id), then keeps a window of CON `POST /dp` (SenML JSON, one record) in flight per port and
counts 2.04 answers. Results go to benchmarks/results/coap_ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path as FsPath
from typing import Any

from benchmarks._sink import CountingSink

RESULTS = FsPath(__file__).resolve().parent / "results"
BODY = b'[{"bn":"/3303/0/","n":"5700","v":21.5}]'


# --- server side (child process) ------------------------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _serve(mode: str, port: int, duration: float, tune: bool) -> dict[str, Any]:
    from translator.coap import CoapSettings, Lwm2mServer
    from translator.ops.collector import tune_gc

    sink = CountingSink()
    stop = asyncio.Event()
    if mode == "site":
        import aiocoap
        import aiocoap.resource

        from translator.lwm2m import decode

        class Dp(aiocoap.resource.Resource):  # type: ignore[misc]
            async def render_post(self, request: Any) -> Any:
                sink.on_records(None, decode(110, request.payload), None, confirmable=True)
                return aiocoap.Message(code=aiocoap.CHANGED)

        class Rd(aiocoap.resource.Resource):  # type: ignore[misc]
            async def render_post(self, request: Any) -> Any:
                return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", "1"))

        site = aiocoap.resource.Site()
        site.add_resource(["dp"], Dp())
        site.add_resource(["rd"], Rd())
        context = await aiocoap.Context.create_server_context(
            site, bind=("127.0.0.1", port), transports=["udp6"]
        )
        server = None
    else:
        settings = CoapSettings(host="127.0.0.1", port=port, hot_path=mode == "hot", tick=1.0)
        server = Lwm2mServer(settings, sink)
        await server.start()
    if tune:
        tune_gc()
    print(json.dumps({"ready": True}), flush=True)
    samples: list[tuple[float, int, int]] = []
    start = time.monotonic()
    cpu0 = time.process_time()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), stop.set)
    while not stop.is_set() and time.monotonic() - start < duration + 30:
        samples.append((round(time.monotonic() - start, 1), sink.records, _rss_kb()))
        try:
            async with asyncio.timeout(2.0):
                await stop.wait()
        except TimeoutError:
            pass
    cpu = time.process_time() - cpu0
    stats = server.stats() if server is not None else {}
    if server is not None:
        await server.stop()
    else:
        await context.shutdown()
    return {
        "records": sink.records,
        "cpu_s": round(cpu, 2),
        "samples": samples,
        "stats": stats,
        "gc_counts": gc.get_stats()[2]["collections"],
    }


# --- load generator -------------------------------------------------------------------------------------


def _encode(  # noqa: PLR0917
    mtype: int, code: int, mid: int, token: bytes, options: list[tuple[int, bytes]], payload: bytes
) -> bytes:
    from translator.coap import wire

    return wire.encode(mtype, code, mid, token, options, payload)


def _load(port: int, ports: int, window: int, duration: float, warmup: float) -> dict[str, Any]:
    from translator.coap import wire

    target = ("127.0.0.1", port)
    socks = []
    for _ in range(ports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.connect(target)
        s.setblocking(False)
        socks.append(s)
    # register every port (its own endpoint)
    for i, s in enumerate(socks):
        query = [
            (wire.OPT_URI_QUERY, f"ep=bench-{i:05d}".encode()),
            (wire.OPT_URI_QUERY, b"lt=3600"),
            (wire.OPT_URI_QUERY, b"lwm2m=1.1"),
        ]
        s.send(
            _encode(
                wire.CON,
                2,
                i,
                b"r",
                [(wire.OPT_URI_PATH, b"rd"), (wire.OPT_CONTENT_FORMAT, b"\x28"), *query],
                b"</3303/0>",
            )
        )
    got = 0
    deadline = time.monotonic() + 10
    while got < ports and time.monotonic() < deadline:
        readable, _, _ = select.select(socks, [], [], 0.5)
        for s in readable:
            try:
                while True:
                    s.recv(2048)
                    got += 1
            except BlockingIOError:
                pass
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    mids = dict.fromkeys(by_fd, 0x100)
    outstanding = dict.fromkeys(by_fd, 0)
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    options = [(wire.OPT_URI_PATH, b"dp"), (wire.OPT_CONTENT_FORMAT, b"\x6e")]

    def send(fd: int) -> None:
        mid = mids[fd] = (mids[fd] + 1) & 0xFFFF
        by_fd[fd].send(_encode(wire.CON, 2, mid, b"t", options, BODY))
        outstanding[fd] += 1

    for fd in by_fd:
        for _ in range(window):
            send(fd)
    ok = errors = 0
    latencies_note = "window-limited; no per-message latency recorded"
    t0 = time.monotonic()
    measure_from = t0 + warmup
    end = measure_from + duration
    counted = 0
    last_sent = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        events = ep.poll(0.2)
        if not events and now - last_sent > 1.0:  # lost datagrams: refill the windows
            for fd in by_fd:
                outstanding[fd] = 0
                for _ in range(window):
                    send(fd)
            last_sent = now
        for fd, _ in events:
            s = by_fd[fd]
            try:
                while True:
                    data = s.recv(2048)
                    outstanding[fd] -= 1
                    if len(data) > 1 and data[1] == 68:
                        ok += 1
                        if now >= measure_from:
                            counted += 1
                    else:
                        errors += 1
                    send(fd)
                    last_sent = now
            except BlockingIOError:
                pass
    for s in socks:
        s.close()
    return {
        "acked_total": ok,
        "acked_measured": counted,
        "errors": errors,
        "rate": round(counted / duration),
        "note": latencies_note,
    }


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def run_mode(  # noqa: PLR0917
    mode: str, duration: float, warmup: float, ports: int, window: int, tune: bool
) -> dict[str, Any]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_coap_ingest",
        "--serve",
        mode,
        "--port",
        str(port),
        "--duration",
        str(duration + warmup),
    ]
    if not tune:
        cmd.append("--no-tune")
    if (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "0", *cmd]
    child = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=FsPath(__file__).resolve().parents[1],
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        ready = child.stdout.readline()
        assert "ready" in ready, ready
        load = _load(port, ports, window, duration, warmup)
        child.stdin.write("stop\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    server = json.loads(out.strip().splitlines()[-1])
    samples = server["samples"]
    rss = [s[2] for s in samples]
    measured = [s for s in samples if s[0] >= warmup]
    rate = 0.0
    if len(measured) >= 2:
        rate = (measured[-1][1] - measured[0][1]) / max(1e-9, measured[-1][0] - measured[0][0])
    return {
        "mode": mode,
        "duration_s": duration,
        "ports": ports,
        "window": window,
        "gc_tuned": tune,
        "records_per_s_into_sink": round(rate),
        "acked_per_s_at_client": load["rate"],
        "errors": load["errors"],
        "server_cpu_s": server["cpu_s"],
        "cpu_us_per_record": round(server["cpu_s"] * 1e6 / max(1, server["records"]), 1),
        "rss_kb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else [],
        "rss_kb_samples": [[s[0], s[2]] for s in samples],
        "stats": server["stats"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_coap_ingest")
    parser.add_argument("--serve", choices=("site", "root", "hot"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-tune", action="store_true", help="leave the GC thresholds alone")
    parser.add_argument("--modes", default="site,root,hot")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--long", type=float, default=120.0, help="length of the hot-mode RSS run (0: skip)")
    parser.add_argument("--ports", type=int, default=200)
    parser.add_argument("--window", type=int, default=2)
    parser.add_argument("--output", type=FsPath, default=RESULTS / "coap_ingest.json")
    args = parser.parse_args(argv)
    if args.serve:
        result = asyncio.run(_serve(args.serve, args.port, args.duration, not args.no_tune))
        print(json.dumps(result), flush=True)
        return 0
    _pin(1)
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)) if args.ports > 900 else None
    runs = []
    for mode in args.modes.split(","):
        run = run_mode(mode, args.duration, args.warmup, args.ports, args.window, not args.no_tune)
        print(
            f"{mode:5s} {run['records_per_s_into_sink']:>7d} records/s"
            f"  {run['cpu_us_per_record']:>6.1f} µs/record"
            f"  RSS {run['rss_kb_first_last_max']} KB",
            flush=True,
        )
        runs.append(run)
    if args.long > 0:
        run = run_mode("hot", args.long, args.warmup, args.ports, args.window, not args.no_tune)
        run["long_run"] = True
        print(
            f"hot {args.long:.0f}s: {run['records_per_s_into_sink']} records/s,"
            f" RSS {run['rss_kb_first_last_max']} KB",
            flush=True,
        )
        runs.append(run)
    report = {
        "benchmark": "coap_ingest",
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
