"""End-to-end throughput of the translator: CoAP CON `POST /dp` → QoS 1 publish → hub PUBACK → CoAP ACK.

    python -m benchmarks.bench_throughput                       # 1000 devices, scenario throughput
    python -m benchmarks.bench_throughput --devices 200 --duration 5 --baselines echo-uvloop
    python -m benchmarks.bench_throughput --scenario soak --soak-duration 600
    python -m benchmarks.bench_throughput --scenario fanout
    python -m benchmarks.bench_throughput --scenario sessions --devices 10000 --idle 30
    python -m benchmarks.bench_throughput --scenario abuse --abuse-scale 0.2 --abuse-settle 20
    python -m benchmarks.bench_throughput --hub mosquitto    # a plain MQTT broker instead of the emulator
    python -m benchmarks.bench_throughput --workers 2 --devices 300  # serve --workers 2 vs one

Three processes on this machine: the translator (`iotc-translator serve`, through a thin wrapper in this
module that adds a GC-pause trace and optional cProfile, then calls the same `translator.cli.main`), the IoT
Central emulator (`python -m emulator`), and the load generator (this process). With two or more cores the
translator is pinned to CPU 0, emulator and load generator to CPU 1 (`--no-pin` leaves them free).

The load generator is a lean asyncio (uvloop when installed) UDP client with one socket — one source port —
per device. It hand-encodes CoAP and SenML CBOR (cbor2) and shares no code with `translator/`. Each device
registers (`POST /rd?ep=bench-NNNNN&lt=..&lwm2m=1.1&b=U`, `</3303/0>`), answers the translator's set-up
downlinks (Read, Write-Attributes, Observe/Observe-Composite, Execute) and then sends CON `POST /dp` with
one SenML CBOR record. Lost datagrams are retransmitted with CoAP's timeouts.

Phases: registration (cold: DPS included) → idle → saturation (closed loop, `--window` CONs in flight per
device; ACKs received per second) → latency at 25/50/75 % of the measured saturation (open loop, paced) →
profile (py-spy on the translator at saturation; `--profile cprofile` or `none`). The same load generator
then drives same-run baselines in place of the translator: a raw UDP echo server (uvloop, and the default
asyncio loop) and a bare aiocoap `Site` answering `POST /rd` 2.01 and `POST /dp` 2.04, so every figure is
also a ratio. `--scenario soak` adds an RSS and GC-pause trace at 50 % load; `--scenario fanout` sends one
command per device through the emulator's REST API (`resetMinMax` → LwM2M Execute on /3303/0/5605).

`--scenario abuse` (default 20 control devices) registers the control devices, then runs each flood of
`--abuse-kinds` (get, block1, register, random; benchmarks/abuse.py, in its own process, sizes scaled by
`--abuse-scale`) while the control devices send `--control-rate` messages/s: the translator's and the
emulator's RSS before, at peak and `--abuse-settle` seconds (default 60) after each flood, and the control
devices' latency (p50/p99) and refusals during it.

`--scenario sessions` (default 10,000 devices) measures what N open device sessions cost: it registers every
device (cold, DPS included), waits until all N hub sessions are connected, then stays idle for `--idle`
seconds (default 30) and stops — no saturation, load levels, profile or baselines (`--profile py-spy` samples
the idle translator after the measured window; `--baselines` still runs baselines). Figures: RSS growth per
device session of the translator and, separately, of the emulator (and of the load generator); the
translator's growth in malloc'd bytes, Python blocks and GC-tracked objects, and its RSS after
`malloc_trim(0)` (live memory, without the free heap glibc kept from the registration peak); idle CPU (% of a
core) of each process with all N sessions open, with a 5 s trace; registrations/s and seconds to all
connected; the peak file descriptors of the three processes against their limit. Pool settings are passed as
environment variables: `--max-sessions` (iotc.max_sessions, default max(N, 100k)), `--connect-rate`
(iotc.connect_rate) and `--keep-alive` (iotc.keep_alive, default the translator's 300 s). The lean transport's
keep-alive runs on the pool's 5 s ConnectionGroup tick and pings a session once nothing was sent for 0.75 ×
keep-alive, i.e. every 225-230 s at 300 s: a 30 s idle window does NOT cover a ping period — the result says
so (`keep_alive.idle_covers_ping_period`); measure `--idle 240`, or `--keep-alive 20` (a ping every 15-20 s),
to include pings. Devices register with a 1-day lifetime, so none re-registers during the run; SAS tokens
(3600 s) are renewed only after 58 minutes.

One host runs out at about 19,000 sessions: the load generator holds one UDP socket per device and the
translator one TCP socket per hub session, against a per-process file-descriptor limit (`ulimit -Hn`, 20,000
here); the loopback TCP connections of one source address to the emulator's one port share 28k ephemeral
ports (32768-60999; the short-lived DPS connections take some too). 100k sessions need the devices spread
over several load-generator processes (or hosts), a translator with `ulimit -n` above 100k, and several source
addresses (127.0.0.x) or emulator ports for its outgoing TLS connections — none of which this harness does;
the run refuses N beyond the descriptor limit with that explanation. Memory is the other wall: the emulator
measured about 300 KB per session at 10k (it serves TLS through asyncio streams; not analysed further),
i.e. ~30 GB at 100k, more than this machine's 24 GB.

`--hub mosquitto` puts a plain MQTT broker (C; installed from Debian when missing) in the emulator's place to
take the emulator's own cost (as much CPU per message as the translator) out of the figures: the devices
are imported with IoT Hub connection strings (no DPS), twin requests go unanswered, and the broker's CPU is
reported under "emulator". Not for `fanout` (commands come through the emulator's REST API).

Results: benchmarks/results/throughput-<scenario>-<devices>.json, and a table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import functools
import gc
import importlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cbor2

from benchmarks._measure import cpu_seconds, percentile, rss_bytes
from benchmarks._translator import emulator_env, http_json, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HUB = "localhost"
perf_counter = time.perf_counter

# --- CoAP by hand (RFC 7252), independent of translator.coap.wire ------------------------------------

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE, FETCH = 1, 2, 3, 4, 5
CREATED, DELETED, CHANGED, CONTENT = 0x41, 0x42, 0x44, 0x45
NOT_FOUND, METHOD_NOT_ALLOWED, NOT_ACCEPTABLE = 0x84, 0x85, 0x86
OPT_OBSERVE, OPT_URI_PATH, OPT_CONTENT_FORMAT, OPT_URI_QUERY, OPT_ACCEPT = 6, 11, 12, 15, 17
SENML_CBOR, LINK_FORMAT = 112, 40
ACK_TIMEOUT, MAX_RETRANSMIT = 2.0, 4

Options = list[tuple[int, bytes]]


def uint(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


def _nibble(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, (value - 269).to_bytes(2, "big")


def encode(  # noqa: PLR0917
    mtype: int, code: int, mid: int, token: bytes, options: Options, payload: bytes = b""
) -> bytes:
    out = bytearray((0x40 | mtype << 4 | len(token), code, mid >> 8, mid & 0xFF))
    out += token
    last = 0
    for number, value in sorted(options, key=lambda option: option[0]):  # stable: repeats keep order
        delta, delta_ext = _nibble(number - last)
        length, length_ext = _nibble(len(value))
        out.append(delta << 4 | length)
        out += delta_ext + length_ext + value
        last = number
    if payload:
        out.append(0xFF)
        out += payload
    return bytes(out)


def _extended(nibble: int, data: bytes, at: int) -> tuple[int, int]:
    if nibble == 13:
        return data[at] + 13, at + 1
    if nibble == 14:
        return int.from_bytes(data[at : at + 2], "big") + 269, at + 2
    return nibble, at


def decode(data: bytes) -> tuple[int, int, int, bytes, Options, bytes]:
    """(type, code, message id, token, options, payload); raises ValueError/IndexError when malformed."""
    tkl = data[0] & 0x0F
    token = data[4 : 4 + tkl]
    at, number, options = 4 + tkl, 0, []
    while at < len(data) and data[at] != 0xFF:
        head = data[at]
        delta, at = _extended(head >> 4, data, at + 1)
        length, at = _extended(head & 0x0F, data, at)
        number += delta
        options.append((number, data[at : at + length]))
        at += length
    payload = data[at + 1 :] if at < len(data) else b""
    return (data[0] >> 4) & 3, data[1], (data[2] << 8) | data[3], token, options, payload


# --- the simulated device ------------------------------------------------------------------------------

RESOURCES: dict[str, Any] = {
    "5700": 21.5,
    "5601": 18.0,
    "5602": 25.0,
    "5603": -40.0,
    "5604": 85.0,
    "5701": "Cel",
    "5750": "bench",
}
EXECUTE_PATH = ("3303", "0", "5605")


def _senml_value(name: str, value: Any) -> dict[int, Any]:
    return {0: name, 3 if isinstance(value, str) else 2: value}  # n, vs / v


def read_payload(segments: list[str]) -> bytes:
    """SenML CBOR for a Read/Observe of /3303/0 or one of its resources (bn -2, n 0, v 2, vs 3)."""
    if len(segments) >= 3:
        return cbor2.dumps([{-2: "/" + "/".join(segments[:3]), **_senml_value("", RESOURCES[segments[2]])}])
    records = [_senml_value(name, value) for name, value in RESOURCES.items()]
    records[0][-2] = "/3303/0/"
    return cbor2.dumps(records)


def composite_payload(request: bytes) -> bytes:
    """SenML CBOR answer to a Read-/Observe-Composite FETCH listing paths as names."""
    base, out = "", []
    for item in cbor2.loads(request) if request else []:
        base = item.get(-2, base)
        path = base + item.get(0, "")
        resource_id = path.rstrip("/").rsplit("/", 1)[-1]
        if resource_id in RESOURCES:
            out.append(_senml_value(path, RESOURCES[resource_id]))
    return cbor2.dumps(out)


@dataclass(slots=True)
class Sent:
    first: float
    last: float
    data: bytes
    kind: str  # "rd" or "dp"
    tries: int = 0


def endpoint_name(index: int) -> str:
    return f"bench-{index:05d}"


def device_names(count: int) -> list[str]:
    return [endpoint_name(index) for index in range(count)]


class Device(asyncio.DatagramProtocol):
    """One endpoint on its own source port."""

    def __init__(self, gen: LoadGenerator, index: int) -> None:
        self.gen = gen
        self.index = index
        self.endpoint = endpoint_name(index)
        self.transport: asyncio.DatagramTransport | None = None
        self.mid = random.randrange(0x10000)
        self.pending: dict[int, Sent] = {}
        self.notify_seq = 2
        self.registered = False
        self.observed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)  # uvloop's is no subclass

    def error_received(self, exc: Exception) -> None:
        self.gen.socket_errors += 1

    def _next_mid(self) -> int:
        self.mid = mid = (self.mid + 1) & 0xFFFF
        return mid

    def send_register(self, now: float, lifetime: int) -> None:
        mid = self._next_mid()
        query = [f"ep={self.endpoint}", f"lt={lifetime}", "lwm2m=1.1", "b=U"]
        options = [(OPT_URI_PATH, b"rd"), (OPT_CONTENT_FORMAT, uint(LINK_FORMAT))]
        options += [(OPT_URI_QUERY, item.encode()) for item in query]
        data = encode(CON, POST, mid, mid.to_bytes(2, "big"), options, b"</3303/0>")
        self.pending[mid] = Sent(now, now, data, "rd")
        assert self.transport is not None
        self.transport.sendto(data)

    def send_dp(self, now: float) -> None:
        mid = self._next_mid()
        mid_bytes = mid.to_bytes(2, "big")
        gen = self.gen
        data = b"\x42\x02" + mid_bytes + mid_bytes + gen.dp_tail[mid & 15]  # CON POST, token = mid
        self.pending[mid] = Sent(now, now, data, "dp")
        gen.sent += 1
        assert self.transport is not None
        self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = perf_counter()
        gen = self.gen
        if len(data) < 4:
            return
        mtype = (data[0] >> 4) & 3
        code = data[1]
        if gen.echo or code >= 0x40:
            # A response, piggy-backed or separate: our tokens are the request's message id.
            sent = self.pending.pop(int.from_bytes(data[4 : 4 + (data[0] & 0x0F)], "big"), None)
            if mtype == CON and not gen.echo:
                assert self.transport is not None
                self.transport.sendto(bytes((0x60, 0, data[2], data[3])))  # empty ACK
            if sent is None:
                gen.stray += 1
                return
            gen.on_response(self, sent, code, now)
        elif code == 0 and mtype == ACK:
            # Empty ACK: a separate response follows; stop retransmitting, keep waiting.
            sent = self.pending.get((data[2] << 8) | data[3])
            if sent is not None:
                sent.last = now + 3600
        elif code and mtype in (CON, NON):
            self.answer(data)

    def answer(self, data: bytes) -> None:
        """A downlink from the translator: answer it (piggy-backed for CON)."""
        try:
            mtype, code, mid, token, options, payload = decode(data)
        except (ValueError, IndexError):
            self.gen.downlinks["malformed"] += 1
            return
        segments = [value.decode() for number, value in options if number == OPT_URI_PATH]
        observe = next((value for number, value in options if number == OPT_OBSERVE), None)
        accept = next((int.from_bytes(v, "big") for n, v in options if n == OPT_ACCEPT), SENML_CBOR)
        out: Options = []
        body = b""
        if code in (GET, FETCH):
            kind = ("observe-" if observe is not None else "read-") + ("composite" if code == FETCH else "")
            if accept != SENML_CBOR:
                reply = NOT_ACCEPTABLE
            elif code == GET and (
                segments[:2] != ["3303", "0"] or not set(segments[2:3]) <= RESOURCES.keys()
            ):
                reply = NOT_FOUND
            else:
                reply = CONTENT
                body = composite_payload(payload) if code == FETCH else read_payload(segments)
                out.append((OPT_CONTENT_FORMAT, uint(SENML_CBOR)))
                if observe == b"":  # register (Observe 0)
                    self.notify_seq += 1
                    out.append((OPT_OBSERVE, uint(self.notify_seq)))
                    self.observed = True
        elif code == PUT:
            kind, reply = "write", CHANGED
        elif code == POST:
            kind, reply = "execute", CHANGED
            if tuple(segments) == EXECUTE_PATH:
                self.gen.executes += 1
        elif code == DELETE:
            kind, reply = "delete", DELETED
        else:
            kind, reply = "other", METHOD_NOT_ALLOWED
        self.gen.downlinks[kind.rstrip("-")] += 1
        if mtype == CON:
            response = encode(ACK, reply, mid, token, out, body)
        else:
            response = encode(NON, reply, self._next_mid(), token, out, body)
        assert self.transport is not None
        self.transport.sendto(response)


@dataclass(slots=True)
class Snapshot:
    at: float
    acked: int
    cpu: dict[str, float]
    udp: dict[str, int]


def udp_counters() -> dict[str, int]:
    with open("/proc/net/snmp") as snmp:
        rows = [line.split() for line in snmp if line.startswith("Udp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:]), strict=True))


class LoadGenerator:
    def __init__(
        self, devices: int, target: tuple[str, int], *, echo: bool, pids: dict[str, int | str]
    ) -> None:
        self.count = devices
        self.target = target
        self.echo = echo
        self.pids = pids
        self.devices: list[Device] = []
        record = cbor2.dumps([{-2: "/3303/0/", 0: "5700", 2: 21.5}])
        tail = encode(CON, POST, 0, b"", [(OPT_URI_PATH, b"dp"), (OPT_CONTENT_FORMAT, uint(SENML_CBOR))])[4:]
        self.dp_tail = [
            tail + b"\xff" + cbor2.dumps([{-2: "/3303/0/", 0: "5700", 2: 20.0 + step / 8}])
            for step in range(16)
        ]
        assert len(self.dp_tail[0]) == len(tail) + 1 + len(record)
        self.closed_loop = False
        self.recording = False
        self.record_from = 0.0
        self.latencies: list[float] = []
        self.sent = self.acked = self.registered = 0
        self.codes: Counter[int] = Counter()
        self.retransmits = self.lost = self.stray = self.socket_errors = 0
        self.downlinks: Counter[str] = Counter()
        self.executes = 0
        self.register_times: list[float] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for index in range(self.count):
            _, device = await loop.create_datagram_endpoint(
                functools.partial(Device, self, index),
                local_addr=("127.0.0.1", 0),
                remote_addr=self.target,
            )
            self.devices.append(device)
        self._sweeper = asyncio.create_task(self._sweep())

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for device in self.devices:
            if device.transport is not None:
                device.transport.close()

    def on_response(self, device: Device, sent: Sent, code: int, now: float) -> None:
        if sent.kind == "rd":
            if code == CREATED or self.echo:
                device.registered = True
                self.registered += 1
                self.register_times.append(now)
            else:
                self.codes[code] += 1
            return
        if code == CHANGED or self.echo:
            self.acked += 1
            if self.recording and sent.first >= self.record_from:
                self.latencies.append(now - sent.first)
        else:
            self.codes[code] += 1
        if self.closed_loop:
            device.send_dp(now)

    async def _sweep(self) -> None:
        """CoAP retransmission (ACK_TIMEOUT doubling, MAX_RETRANSMIT), then give up."""
        while True:
            await asyncio.sleep(0.25)
            now = perf_counter()
            for device in self.devices:
                if not device.pending:
                    continue
                for mid, sent in list(device.pending.items()):
                    if now - sent.last < ACK_TIMEOUT * (2**sent.tries):
                        continue
                    if sent.tries >= MAX_RETRANSMIT:
                        del device.pending[mid]
                        self.lost += 1
                        if sent.kind == "dp" and self.closed_loop:
                            device.send_dp(now)
                        continue
                    sent.tries += 1
                    sent.last = now
                    self.retransmits += 1
                    assert device.transport is not None
                    device.transport.sendto(sent.data)

    def snapshot(self) -> Snapshot:
        cpu = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                cpu[name] = cpu_seconds(pid)
        return Snapshot(perf_counter(), self.acked, cpu, udp_counters())

    def in_flight(self) -> int:
        return sum(len(device.pending) for device in self.devices)

    async def drain(self, timeout: float = 20.0) -> None:
        self.closed_loop = False
        deadline = perf_counter() + timeout
        while self.in_flight() and perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    # -- phases --------------------------------------------------------------------------------------

    async def register_all(
        self, window: int, lifetime: int, timeout: float, progress: Callable[[str], None] | None = None
    ) -> float:
        """Every device registers, at most `window` at once; returns when all have their 2.01."""
        started = perf_counter()
        queue = iter(self.devices)
        sent = 0
        deadline = started + timeout
        progress_at = started + 10.0
        while self.registered < self.count and perf_counter() < deadline:
            if progress is not None and perf_counter() >= progress_at:
                progress_at += 10.0
                progress(
                    f"  {perf_counter() - started:5.0f} s: {self.registered} registered (2.01),"
                    f" {self.retransmits} retransmissions, other codes {dict(self.codes)}"
                )
            waiting = sent - self.registered - sum(self.codes.values())
            for _ in range(max(0, window - waiting)):
                device = next(queue, None)
                if device is None:
                    break
                device.send_register(perf_counter(), lifetime)
                sent += 1
            await asyncio.sleep(0.002)
        return perf_counter() - started

    async def saturate(self, window: int, warmup: float, duration: float) -> tuple[Snapshot, Snapshot]:
        self.closed_loop = True
        now = perf_counter()
        for device in self.devices:
            for _ in range(window):
                device.send_dp(now)
        await asyncio.sleep(warmup)
        self.recording, self.latencies, self.record_from = True, [], perf_counter()
        first = self.snapshot()
        await asyncio.sleep(duration)
        last = self.snapshot()
        self.recording = False
        await self.drain()
        return first, last

    async def paced(self, rate: float, settle: float, duration: float) -> tuple[Snapshot, Snapshot]:
        """Open loop: `rate` messages/s round-robin over the devices, sent from a 1 ms tick."""
        start = perf_counter()
        sent, index, devices, count = 0, 0, self.devices, self.count
        first: Snapshot | None = None
        while True:
            now = perf_counter()
            elapsed = now - start
            if first is None and elapsed >= settle:
                self.recording, self.latencies, self.record_from = True, [], now
                first = self.snapshot()
            if elapsed >= settle + duration:
                break
            due = int(rate * elapsed) - sent
            for _ in range(due):
                devices[index].send_dp(now)
                index = (index + 1) % count
            sent += max(0, due)
            await asyncio.sleep(0.001)
        last = self.snapshot()
        self.recording = False
        await self.drain()
        assert first is not None
        return first, last


def window_figures(first: Snapshot, last: Snapshot) -> dict[str, Any]:
    wall = last.at - first.at
    acked = last.acked - first.acked
    figures: dict[str, Any] = {"seconds": round(wall, 2), "acked": acked, "msg_per_s": round(acked / wall)}
    cpu: dict[str, Any] = {}
    for name in first.cpu:
        if name in last.cpu:
            seconds = last.cpu[name] - first.cpu[name]
            cpu[name] = {
                "us_per_msg": round(seconds * 1e6 / max(1, acked), 1),
                "core_percent": round(100 * seconds / wall, 1),
            }
    figures["cpu"] = cpu
    figures["udp"] = {
        k: last.udp[k] - first.udp[k] for k in ("RcvbufErrors", "SndbufErrors", "InErrors") if k in last.udp
    }
    return figures


def latency_figures(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "samples": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5) * 1000, 3),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 3),
        "p99_9_ms": round(percentile(ordered, 0.999) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3) if ordered else float("nan"),
    }


async def measure_load(
    gen: LoadGenerator, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    """Saturation (closed loop), then latency at fractions of it (open loop)."""
    first, last = await gen.saturate(args.window, args.warmup, args.duration)
    saturation = window_figures(first, last)
    saturation["latency_closed_loop"] = latency_figures(gen.latencies)
    saturation["in_flight"] = args.window * gen.count
    log(f"  saturation: {saturation['msg_per_s']} msg/s  cpu {saturation['cpu']}")
    result: dict[str, Any] = {"saturation": saturation, "load_levels": {}}
    for fraction in args.levels:
        rate = fraction * saturation["msg_per_s"]
        first, last = await gen.paced(rate, 1.0, args.level_duration)
        level = window_figures(first, last)
        level["target_msg_per_s"] = round(rate)
        level["latency"] = latency_figures(gen.latencies)
        result["load_levels"][f"{round(fraction * 100)}%"] = level
        log(
            f"  {fraction:.0%} ({rate:.0f}/s): {level['msg_per_s']} msg/s"
            f"  p50 {level['latency']['p50_ms']} ms  p99 {level['latency']['p99_ms']} ms"
            f"  p99.9 {level['latency']['p99_9_ms']} ms"
        )
    result["totals"] = {
        "sent": gen.sent,
        "acked": gen.acked,
        "other_codes": {f"{c >> 5}.{c & 31:02d}": n for c, n in gen.codes.items()},
        "retransmits": gen.retransmits,
        "lost": gen.lost,
        "stray": gen.stray,
        "socket_errors": gen.socket_errors,
    }
    return result


# --- processes -------------------------------------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: int | None, command: list[str]) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def wait_line(path: Path, pattern: str, timeout: float, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if pattern in line:
                    return line
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited {process.returncode}: {path.read_text()[-2000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no {pattern!r} from {process.args!r}")


def prometheus(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                figures[name] = float(value)
    return figures


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Stack:
    work: Path
    cpu_server: int | None
    cpu_client: int | None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, command: list[str], cpu: int | None, env: dict[str, str] | None = None) -> Any:
        out = self.work / f"{name}.out"
        with out.open("wb") as sink:
            process = subprocess.Popen(
                pinned(cpu, command),
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
            )
        self.processes.append(process)
        return process, out

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            stop_process(process)
        self.processes.clear()


# --- baseline servers and the translator wrapper (child processes) ------------------------------------


def use_loop(name: str) -> str:
    """Install uvloop's policy when asked for and installed; the name of the loop in use."""
    if name == "uvloop":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            return "asyncio"
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    return "asyncio"


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def serve_baseline(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if kind == "echo":
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", port))
        print(json.dumps({"ready": True, "loop": type(loop).__module__}), flush=True)
        await stop.wait()
        transport.close()
        return
    import aiocoap
    import aiocoap.resource

    class Created(aiocoap.resource.Resource):  # type: ignore[misc]
        async def render_post(self, request: Any) -> Any:
            return aiocoap.Message(code=aiocoap.CREATED, location_path=("rd", "1"))

    class Changed(aiocoap.resource.Resource):  # type: ignore[misc]
        async def render_post(self, request: Any) -> Any:
            cbor2.loads(request.payload)
            return aiocoap.Message(code=aiocoap.CHANGED)

    site = aiocoap.resource.Site()
    site.add_resource(["rd"], Created())
    site.add_resource(["dp"], Changed())
    context = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
    print(json.dumps({"ready": True, "loop": type(loop).__module__}), flush=True)
    await stop.wait()
    await context.shutdown()


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def memory_probe(*, trim: bool) -> dict[str, Any]:
    """This process's memory as Python and glibc see it and, with `trim`, RSS after `malloc_trim(0)` gave
    free heap back: what of the RSS is live and what is freed memory the allocator kept from a peak."""
    out: dict[str, Any] = {
        "rss_bytes": rss_bytes(),
        "python_allocated_blocks": sys.getallocatedblocks(),
        "gc_tracked_objects": len(gc.get_objects()) + gc.get_freeze_count(),
    }
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
        out["malloc_in_use_bytes"] = info.uordblks + info.hblkhd  # heap chunks in use + mmapped chunks
        out["malloc_free_bytes"] = info.fordblks
        if trim:
            libc.malloc_trim(0)
            out["rss_bytes_after_malloc_trim"] = rss_bytes()
    except (OSError, AttributeError) as error:  # not glibc
        out["malloc_error"] = repr(error)
    return out


def serve_translator() -> int:
    """`iotc-translator serve` (translator.cli.main) with a GC-pause trace (BENCH_GC_TRACE=file); with
    BENCH_CPROFILE=file, cProfile switched on by SIGUSR1 and off (and written) by SIGUSR2; with
    BENCH_MEMORY=file, SIGRTMIN writes `memory_probe()` there (SIGRTMIN+1: and trims the heap)."""
    from translator.cli import main as cli_main

    memory_path = os.environ.get("BENCH_MEMORY")
    if memory_path:
        probe_path = Path(memory_path)

        def write_probe(signum: int, _: Any) -> None:
            probe = memory_probe(trim=signum != signal.SIGRTMIN)
            probe_path.with_suffix(".tmp").write_text(json.dumps(probe))
            probe_path.with_suffix(".tmp").replace(probe_path)

        signal.signal(signal.SIGRTMIN, write_probe)
        signal.signal(signal.SIGRTMIN + 1, write_probe)

    trace_path = os.environ.get("BENCH_GC_TRACE")
    pauses: list[tuple[float, int, float]] = []
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = perf_counter()
        else:
            pauses.append((time.time(), int(info["generation"]), perf_counter() - started[0]))

    if trace_path:
        gc.callbacks.append(on_gc)
    profile_path = os.environ.get("BENCH_CPROFILE")
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
        signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())

        def dump(*_: Any) -> None:
            profiler.disable()
            profiler.dump_stats(profile_path)

        signal.signal(signal.SIGUSR2, dump)
    try:
        return cli_main(["serve"])
    finally:
        if trace_path:
            Path(trace_path).write_text(json.dumps(pauses))


# --- profile: py-spy samples by stage -----------------------------------------------------------------

STAGES = (
    ("translator/coap/", "coap"),
    ("aiocoap/", "coap"),
    ("translator/lwm2m/", "codec"),
    ("translator/codec/", "codec"),
    ("translator/bridge/", "bridge"),
    ("translator/iotc/", "mqtt"),
    ("translator/ops/", "metrics"),
    ("prometheus_client/", "metrics"),
    ("translator/store/", "store"),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def classify(frames: list[str]) -> tuple[str, str]:
    """(stage, detail) of a stack (root first): the innermost project frame decides the stage, its file the
    detail (TLS below the MQTT code is `mqtt:tls`); stacks with no project frame are the event loop: epoll,
    C task steps and future callbacks (`Handle._run` as the leaf), or the rest."""
    for depth in range(len(frames) - 1, -1, -1):
        frame = frames[depth]
        for marker, stage in STAGES:
            if marker in frame:
                below = frames[depth + 1 :]
                if stage == "mqtt" and any("ssl.py" in f for f in below):
                    return stage, "mqtt:tls (ssl)"
                if any("json/" in f for f in below):
                    return stage, f"{stage}:json"
                match = _FRAME.match(frame)
                name = match["file"] if match is not None else frame
                return stage, f"{stage}:{name.rsplit('/', 1)[-1]}"
    if any("selectors.py" in f for f in frames):
        return "loop", "loop:epoll"
    if frames and frames[-1].startswith("Handle._run"):
        return "loop", "loop:task steps, callbacks (C)"
    return "loop", "loop:other"


def parse_raw_profile(path: Path) -> dict[str, Any]:
    stages: Counter[str] = Counter()
    details: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        stage, detail = classify(frames)
        stages[stage] += count
        details[detail] += count
        match = _FRAME.match(frames[-1])
        leaf = (
            frames[-1] if match is None else f"{match['func']} ({match['file'].split('site-packages/')[-1]})"
        )
        self_time[leaf.replace(str(ROOT) + "/", "")] += count

    def share(counter: Counter[str], top: int | None = None) -> dict[str, float]:
        return {k: round(100 * v / max(1, total), 1) for k, v in counter.most_common(top)}

    return {
        "samples": total,
        "stages_percent": share(stages),
        "details_percent": share(details, 30),
        "top_self_percent": share(self_time, 30),
    }


def parse_cprofile(path: Path) -> dict[str, Any]:
    import pstats

    stats = pstats.Stats(str(path))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    stages: dict[str, float] = {}
    rows: list[tuple[float, int, float, str]] = []
    for (file, line, func), (_, calls, tottime, cumtime, _) in table.items():
        stage = classify([file])[0] if any(m in file for m, _ in STAGES) else "loop/stdlib"
        stages[stage] = stages.get(stage, 0.0) + tottime
        rows.append((tottime, calls, cumtime, f"{func} ({file.replace(str(ROOT) + '/', '')}:{line})"))
    rows.sort(reverse=True)
    return {
        "stages_percent": {
            k: round(100 * v / total, 1) for k, v in sorted(stages.items(), key=lambda kv: -kv[1])
        },
        "top_self": [
            {
                "function": name,
                "self_percent": round(100 * t / total, 1),
                "calls": calls,
                "cum_s": round(c, 3),
            }
            for t, calls, c, name in rows[:25]
        ],
    }


# --- orchestration ---------------------------------------------------------------------------------------


def core_plan(args: argparse.Namespace) -> tuple[int | None, int | None]:
    if args.no_pin or (os.cpu_count() or 1) < 2:
        return None, None
    return 0, 1


def start_hub(stack: Stack, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    return start_mosquitto(stack, args) if args.hub == "mosquitto" else start_emulator(stack, args)


def start_mosquitto(stack: Stack, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """A plain MQTT broker (C, no DPS, no twin) as the hub, to take the emulator's own cost out of the
    figures. The devices are imported with IoT Hub connection strings, so the translator skips DPS; twin
    requests go unanswered (the session logs it and telemetry flows)."""
    from benchmarks.bench_sessions import ensure_mosquitto
    from emulator.certs import ensure_server_tls

    tls = ensure_server_tls(stack.work / "mosquitto-tls", [HUB])
    port = free_port()
    config = stack.work / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {tls.ca_path}\ncertfile {tls.cert_path}\nkeyfile {tls.key_path}\n"
        # As root, mosquitto would switch to its own user, which cannot read our 0600 key.
        "user root\nallow_anonymous true\nmax_connections -1\nlog_type error\npersistence false\n"
        "max_inflight_messages 0\nmax_queued_messages 10000\n"
    )
    process, out = stack.spawn("emulator", [ensure_mosquitto(), "-c", str(config)], stack.cpu_client)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {out.read_text()[-2000:]}") from None
            time.sleep(0.05)
    key = base64.b64encode(b"bench-mosquitto-device-key-0000!").decode()
    rows = ["deviceId,connectionString"] + [
        f"{name},HostName={HUB};DeviceId={name};SharedAccessKey={key}" for name in device_names(args.devices)
    ]
    table = stack.work / "devices.csv"
    table.write_text("\n".join(rows) + "\n")
    subprocess.run(
        [sys.executable, "-m", "translator.cli", "devices", "import", str(table)],
        check=True,
        cwd=ROOT,
        env={**os.environ, "IOTC_TRANSLATOR_STATE_DIR": str(stack.work / "translator")},
        capture_output=True,
        timeout=300,
    )
    # The translator needs *an* IoT Central configuration (else serve starts its embedded emulator);
    # every device is imported with its hub, so DPS is never asked.
    return process, {
        "idScope": "0neMOSQUITTO",
        "groupPrimaryKey": key,
        "mqttPort": port,
        "caPath": str(tls.ca_path),
        "httpPort": None,
    }


def start_emulator(stack: Stack, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    command = [sys.executable, "-m", "emulator", "--state-dir", str(stack.work / "emulator")]
    command += ["--mqtt-port", "0", "--http-port", "0", "--https-port", "0"]
    command += ["--hub-names", HUB, "--log-level", "WARNING"]
    # The fan-out sends hundreds of commands a second: IoT Central's 20 requests/s would only measure that.
    command += ["--rest-rate-limit", "0"]
    command += ["--no-limits"]  # a benchmark measures the translator, not IoT Hub's throttles
    process, out = stack.spawn("emulator", command, stack.cpu_client)
    ready = json.loads(wait_line(out, '"ready"', 60, process))
    return process, ready


def start_translator(
    stack: Stack, args: argparse.Namespace, emulator: dict[str, Any]
) -> tuple[Any, int, int, Path]:
    coap_port = free_port(socket.SOCK_DGRAM)
    ops_port = free_port()
    trace = stack.work / "gc-trace.json"
    env = {
        "IOTC_TRANSLATOR_STATE_DIR": str(stack.work / "translator"),
        "IOTC_TRANSLATOR_LOG_LEVEL": args.translator_log_level,
        "IOTC_TRANSLATOR_COAP_HOST": "127.0.0.1",
        "IOTC_TRANSLATOR_COAP_PORT": str(coap_port),
        "IOTC_TRANSLATOR_OPERATIONS_PORT": str(ops_port),
        "BENCH_GC_TRACE": str(trace),
        "BENCH_MEMORY": str(stack.work / "memory.json"),
        **emulator_env(emulator, args.connect_rate, args.max_sessions),
    }
    if args.keep_alive is not None:
        env["IOTC_TRANSLATOR_IOTC_KEEP_ALIVE"] = str(args.keep_alive)
    if args.profile == "cprofile":
        env["BENCH_CPROFILE"] = str(stack.work / "translator.prof")
    command = [sys.executable, "-m", "benchmarks.bench_throughput", "--serve", "translator"]
    process, out = stack.spawn("translator", command, stack.cpu_server, env)
    wait_healthy(process, out, f"http://127.0.0.1:{ops_port}", 60, "translator")
    return process, coap_port, ops_port, trace


def gc_summary(pauses: Iterable[list[float]], since: float = 0.0) -> dict[str, Any]:
    by_generation: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for at, generation, seconds in pauses:
        if at >= since:
            by_generation[int(generation)].append(seconds)
    out: dict[str, Any] = {}
    for generation, values in by_generation.items():
        values.sort()
        out[f"gen{generation}"] = {
            "count": len(values),
            "p99_ms": round(percentile(values, 0.99) * 1000, 2) if values else 0,
            "max_ms": round(values[-1] * 1000, 2) if values else 0,
            "total_ms": round(sum(values) * 1000, 1),
        }
    return out


# --- sessions: descriptors, idle trace, per-session figures ---------------------------------------------

KEEP_ALIVE_DEFAULT = 300  # translator.settings.IotcSettings.keep_alive
KEEP_ALIVE_TICK = 5.0  # translator.iotc.client.pool.PoolSettings.keep_alive_tick (not a setting)


def fd_count(pid: int | str) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_limit(pid: int | str) -> int:
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                return int(line.split()[3])  # soft limit
    return -1


class FdWatch:
    """Peak open file descriptors of each process, sampled every `interval` seconds."""

    def __init__(self, pids: dict[str, int | str], interval: float = 1.0) -> None:
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> dict[str, int]:
        now: dict[str, int] = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                now[name] = fd_count(pid)
                self.peak[name] = max(self.peak[name], now[name])
        return now

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        now = self.sample()
        limits = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                limits[name] = fd_limit(pid)
        return {"peak": self.peak, "at_end": now, "soft_limit": limits}


def ping_period(keep_alive: int, tick: float = KEEP_ALIVE_TICK) -> float:
    """Seconds between two PINGREQs of an idle lean session: the first tick at or after 0.75 × keep-alive."""
    return math.ceil(0.75 * keep_alive / tick) * tick


async def measure_idle(gen: LoadGenerator, seconds: float, bucket: float = 5.0) -> dict[str, Any]:
    """CPU of every process over `seconds` of silence, with a trace per `bucket` seconds."""
    gc.collect()
    first = previous = gen.snapshot()
    trace: list[dict[str, Any]] = []
    end = first.at + seconds
    while (left := end - perf_counter()) > 0:
        await asyncio.sleep(min(bucket, left))
        now = gen.snapshot()
        wall = now.at - previous.at
        trace.append(
            {
                "from_s": round(previous.at - first.at, 1),
                **{
                    k: round(100 * (now.cpu[k] - previous.cpu[k]) / wall, 2)
                    for k in now.cpu
                    if k in previous.cpu
                },
            }
        )
        previous = now
    wall = previous.at - first.at
    return {
        "seconds": round(wall, 1),
        "core_percent": {
            k: round(100 * (previous.cpu[k] - first.cpu[k]) / wall, 2) for k in first.cpu if k in previous.cpu
        },
        "core_percent_trace": trace,
        "note": "CPU seconds of each process from /proc over the window; clock ticks are 10 ms, so a figure"
        " under 100 * 0.01 / seconds % is noise",
    }


async def translator_memory(process: Any, path: Path, *, trim: bool) -> dict[str, Any]:
    """The translator's `memory_probe()` (signalled; with `trim` it gives free heap back, so last)."""
    with contextlib.suppress(FileNotFoundError):
        await asyncio.to_thread(path.unlink)
    process.send_signal(signal.SIGRTMIN + 1 if trim else signal.SIGRTMIN)
    for _ in range(100):
        if await asyncio.to_thread(path.exists):
            break
        await asyncio.sleep(0.1)
    else:
        return {"error": "no memory probe written"}
    probe: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text))
    return probe


def sessions_figures(
    args: argparse.Namespace,
    result: dict[str, Any],
    rss: dict[str, dict[str, int]],
    health: dict[str, Any],
) -> dict[str, Any]:
    """The per-session summary of a sessions run (RSS in bytes by process: before/registered/after_idle)."""
    n = args.devices
    keep_alive = args.keep_alive if args.keep_alive is not None else KEEP_ALIVE_DEFAULT
    period = ping_period(keep_alive)
    idle = result["idle"]
    per_device = {
        name: {
            "before_mb": round(phases["before"] / 2**20, 1),
            "registered_mb": round(phases["registered"] / 2**20, 1),
            "after_idle_mb": round(phases["after_idle"] / 2**20, 1),
            "bytes_per_session": round((phases["registered"] - phases["before"]) / n),
            "bytes_per_session_after_idle": round((phases["after_idle"] - phases["before"]) / n),
        }
        for name, phases in rss.items()
    }
    memory = result.get("translator_memory", {})
    before, after = memory.get("before", {}), memory.get("after_idle", {})
    if "rss_bytes_after_malloc_trim" in after:
        trimmed = after["rss_bytes_after_malloc_trim"] - rss["translator"]["before"]
        per_device["translator"]["bytes_per_session_after_malloc_trim"] = round(trimmed / n)
    memory["growth_per_session"] = {
        k: round((after[k] - before[k]) / n, 1)
        for k in ("malloc_in_use_bytes", "python_allocated_blocks", "gc_tracked_objects")
        if k in before and k in after
    }
    translator_idle = idle["core_percent"].get("translator", 0.0)
    bytes_per_session = per_device["translator"]["bytes_per_session"]
    return {
        "devices": n,
        "sessions_connected_at_end": health.get("sessions", {}),
        "rss": per_device,
        "idle_core_percent": idle["core_percent"],
        "idle_seconds": idle["seconds"],
        "registrations_per_s": result["registration"]["connected_per_s"],
        "seconds_to_all_connected": result["registration"]["seconds_to_all_connected"],
        "keep_alive": {
            "keep_alive_s": keep_alive,
            "ping_period_s": period,
            "tick_s": KEEP_ALIVE_TICK,
            "idle_covers_ping_period": idle["seconds"] >= period + KEEP_ALIVE_TICK,
            "note": "a lean session sends PINGREQ on the first 5 s tick at which it has sent nothing for"
            " 0.75 x keep-alive; sessions connected during registration ping at staggered times, so only a"
            " window of at least ping_period + tick counts every session's ping once",
        },
        "linear_to_100k": {
            "translator_rss_gb": round(bytes_per_session * 100_000 / 2**30, 2),
            "translator_idle_core_percent": round(translator_idle * 100_000 / n, 1),
            "goal": "100k sessions at <= 64 KB each and <= 10 % of a core idle",
            "bytes_per_session_meets_goal": bytes_per_session <= 64 * 1024,
        },
    }


def check_capacity(devices: int) -> str | None:
    """Why `devices` sessions cannot run on this host with one process per role, or None."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    needed = devices + 256  # one UDP socket (load generator) or TCP socket (translator, emulator) each
    if needed > hard:
        return (
            f"{devices} devices need about {needed} file descriptors in each of the load generator (one UDP"
            f" socket per device), the translator and the emulator (one TCP connection per hub session), but"
            f" the hard limit is {hard} (ulimit -Hn). Split the devices over several load generators and"
            " raise the limit of the translator and the emulator (or run more of them)."
        )
    if devices > high - low + 1 - 1000:
        return (
            f"{devices} devices exceed the {high - low + 1} ephemeral ports ({low}-{high}) that the load"
            " generator's UDP sockets and the translator's TCP connections to the emulator (one source"
            " address, one destination port) each draw from; use several source addresses (127.0.0.x) or"
            " emulator ports."
        )
    return None


async def run_translator(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    cpu_server, cpu_client = core_plan(args)
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-throughput-")), cpu_server, cpu_client)
    result: dict[str, Any] = {}
    gen: LoadGenerator | None = None
    try:
        emulator_process, emulator = start_hub(stack, args)
        translator_process, coap_port, ops_port, trace = start_translator(stack, args, emulator)
        pids: dict[str, int | str] = {
            "translator": translator_process.pid,
            "emulator": emulator_process.pid,
            "loadgen": "self",
        }
        ops = f"http://127.0.0.1:{ops_port}"
        sessions = args.scenario == "sessions"
        rss_loadgen_empty = rss_bytes()
        gen = LoadGenerator(args.devices, ("127.0.0.1", coap_port), echo=False, pids=pids)
        await gen.open()
        gc.collect()
        rss_empty = rss_bytes(translator_process.pid)
        rss: dict[str, dict[str, int]] = {
            "translator": {"before": rss_empty},
            "emulator": {"before": rss_bytes(emulator_process.pid)},
            "loadgen": {"before": rss_loadgen_empty},  # before its UDP sockets and Device objects
        }
        fds = FdWatch(
            {"translator": translator_process.pid, "emulator": emulator_process.pid, "loadgen": "self"}
        )
        memory_file = stack.work / "memory.json"
        if sessions:
            fds.start()
            memory_before = await translator_memory(translator_process, memory_file, trim=False)

        # registration, cold: CoAP 2.01, then DPS + hub connect, then the bridge's set-up downlinks
        log(f"translator: registering {args.devices} devices")
        before = gen.snapshot()
        coap_seconds = await gen.register_all(
            args.register_window, args.lifetime, args.register_timeout, log if sessions else None
        )
        connected_at = setup_at = None
        deadline = perf_counter() + args.register_timeout
        progress_at = perf_counter()
        while perf_counter() < deadline:
            health = await asyncio.to_thread(http_json, f"{ops}/healthz")
            connected = health.get("sessions", {}).get("connected", 0)
            if connected_at is None and connected >= args.devices:
                connected_at = perf_counter()
            if setup_at is None and all(d.observed for d in gen.devices):
                setup_at = perf_counter()
            if connected_at is not None and setup_at is not None:
                break
            if sessions and perf_counter() >= progress_at:
                progress_at += 10.0
                elapsed = perf_counter() - before.at
                log(f"  {elapsed:5.0f} s: sessions {health.get('sessions')}, fds {fds.sample()}")
            await asyncio.sleep(1.0 if sessions else 0.1)
        after = gen.snapshot()
        if connected_at is None:
            raise RuntimeError(f"only {health.get('sessions')} sessions after {args.register_timeout} s")
        await asyncio.sleep(
            5.0 if sessions else 1.0
        )  # set-up downlinks of the last devices, reported properties
        n = args.devices
        registration = {
            "coap_2_01_per_s": round(n / coap_seconds, 1),
            "connected_per_s": round(n / (connected_at - before.at), 1),
            "coap_set_up_per_s": round(n / ((setup_at or after.at) - before.at), 1),
            "seconds_to_all_connected": round(connected_at - before.at, 2),
            "cpu_ms_per_registration": {
                k: round((after.cpu[k] - before.cpu[k]) * 1000 / n, 2) for k in before.cpu
            },
            "connect_rate_setting": args.connect_rate,
            "downlinks_answered": dict(gen.downlinks),
            "note": "cold: includes DPS (emulator retry-after 3 s) and TLS handshakes; coap_set_up: Read"
            " and Observe answered (the bridge does not wait for the hub session to send them)",
        }
        result["registration"] = registration
        log(
            f"  registered: {registration['coap_2_01_per_s']}/s (2.01), all connected after"
            f" {registration['seconds_to_all_connected']} s ({registration['connected_per_s']}/s)"
        )

        if sessions:
            log(f"  open file descriptors: {fds.sample()}")
            rss["translator"]["registered"] = rss_bytes(translator_process.pid)
            rss["emulator"]["registered"] = rss_bytes(emulator_process.pid)
            rss["loadgen"]["registered"] = rss_bytes()
            log(f"idle: {args.idle:.0f} s with {n} sessions open")

        # idle with every session open
        result["idle"] = await measure_idle(gen, args.idle)
        rss_registered = rss_bytes(translator_process.pid)

        if sessions:
            health = await asyncio.to_thread(http_json, f"{ops}/healthz")
            rss["translator"]["after_idle"] = rss_registered
            rss["emulator"]["after_idle"] = rss_bytes(emulator_process.pid)
            rss["loadgen"]["after_idle"] = rss_bytes()
            result["file_descriptors"] = fds.stop()
            result["translator_memory"] = {
                "before": memory_before,
                "after_idle": await translator_memory(translator_process, memory_file, trim=True),
            }
            metrics = await asyncio.to_thread(prometheus, f"{ops}/metrics")
            result["translator_metrics"] = {
                k: v
                for k, v in metrics.items()
                if k.startswith(("iotc_translator_errors", "iotc_translator_reg"))
            }
            result["sessions"] = sessions_figures(args, result, rss, health)
            if health.get("sessions", {}).get("connected", 0) < n:
                log(f"  sessions at the end of the idle phase: {health.get('sessions')} (some dropped)")
            if args.profile != "none":
                result["profile"] = await profile(gen, args, translator_process, stack.work, log, idle=True)
            stop_process(translator_process)
            result["machine_note"] = {"translator_cpu": cpu_server, "emulator_and_loadgen_cpu": cpu_client}
            return result

        # warm-up: every device once, so caches and first-publish paths are out of the way
        await gen.saturate(1, 0.0, args.warmup)
        if args.scenario == "abuse":
            pids_now = {"translator": translator_process.pid, "emulator": emulator_process.pid}
            result["abuse"] = await abuse(
                gen, args, pids=pids_now, coap_port=coap_port, cpu=stack.cpu_client, log=log
            )
            stop_process(translator_process)
            return result
        metrics_before = await asyncio.to_thread(prometheus, f"{ops}/metrics")
        gc_since = time.time()

        log("translator: saturation and load levels")
        result.update(await measure_load(gen, args, log))
        rss_loaded = rss_bytes(translator_process.pid)
        metrics_after = await asyncio.to_thread(prometheus, f"{ops}/metrics")
        result["translator_metrics_delta"] = {
            k: metrics_after[k] - metrics_before.get(k, 0.0)
            for k in metrics_after
            if k.startswith(
                ("iotc_translator_messages", "iotc_translator_outboxed", "iotc_translator_errors")
            )
            and k.endswith("_total")
            and metrics_after[k] != metrics_before.get(k, 0.0)
        }
        result["rss"] = {
            "translator_empty_mb": round(rss_empty / 2**20, 1),
            "translator_registered_mb": round(rss_registered / 2**20, 1),
            "translator_after_load_mb": round(rss_loaded / 2**20, 1),
            "translator_bytes_per_device": round((rss_registered - rss_empty) / n),
            "emulator_mb": round(rss_bytes(emulator_process.pid) / 2**20, 1),
        }

        if args.scenario == "soak":
            result["soak"] = await soak(gen, args, translator_process.pid, result, log)
        if args.scenario == "fanout":
            result["fanout"] = await fanout(gen, args, emulator, log)

        if args.profile != "none":
            result["profile"] = await profile(gen, args, translator_process, stack.work, log)

        stop_process(translator_process)
        if trace.exists():
            pauses = json.loads(trace.read_text())
            result["gc_pauses_during_load"] = gc_summary(pauses, gc_since)
            if args.scenario == "soak":
                result["soak"]["gc_trace"] = gc_trace(pauses, result["soak"]["started"])
        result["machine_note"] = {
            "translator_cpu": cpu_server,
            "emulator_and_loadgen_cpu": cpu_client,
        }
        return result
    finally:
        if gen is not None:
            gen.close()
        stack.stop_all()
        if args.keep_work:
            log(f"work directory kept: {stack.work}")
        else:
            shutil.rmtree(stack.work, ignore_errors=True)


# kind: (datagrams, seconds) at --abuse-scale 1; the registration flood last (its devices stay registered)
ABUSE_FLOODS = {
    "get": (150_000, 30.0),
    "block1": (40_000, 20.0),
    "random": (100_000, 20.0),
    "register": (20_000, 20.0),
}


async def peak_rss(pids: dict[str, int], peak: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            with contextlib.suppress(OSError):
                peak[name] = max(peak[name], rss_bytes(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def abuse(
    gen: LoadGenerator,
    args: argparse.Namespace,
    *,
    pids: dict[str, int],
    coap_port: int,
    cpu: int | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Each flood in its own process (benchmarks/abuse.py) while the control devices send at a steady rate:
    RSS before / peak / `--abuse-settle` seconds after, and the control devices' latency during the flood."""
    out: dict[str, Any] = {}
    for kind in args.abuse_kinds:
        count, seconds = ABUSE_FLOODS[kind]
        count, seconds = max(1, int(count * args.abuse_scale)), max(1.0, seconds * args.abuse_scale)
        before = {name: rss_bytes(pid) for name, pid in pids.items()}
        peak = dict(before)
        stop = asyncio.Event()
        sampler = asyncio.create_task(peak_rss(pids, peak, stop))
        log(f"abuse: {kind} flood, {count} datagrams in {seconds:.0f} s")
        command = [sys.executable, "-m", "benchmarks.abuse", kind, "--port", str(coap_port)]
        command += ["--count", str(count), "--seconds", str(seconds)]
        flooder = await asyncio.create_subprocess_exec(*pinned(cpu, command), stdout=subprocess.PIPE)
        codes_before, lost_before = Counter(gen.codes), gen.lost
        first, last = await gen.paced(args.control_rate, 0.5, seconds - 0.5)
        control = {
            **latency_figures(gen.latencies),
            "sent_per_s": args.control_rate,
            "acked": last.acked - first.acked,
            "other_codes": dict(gen.codes - codes_before),
            "lost": gen.lost - lost_before,
        }
        stdout, _ = await asyncio.wait_for(flooder.communicate(), timeout=seconds + 120)
        flood = json.loads(stdout.decode().strip().splitlines()[-1])
        during = {name: rss_bytes(pid) for name, pid in pids.items()}
        await asyncio.sleep(args.abuse_settle)
        stop.set()
        await sampler
        after = {name: rss_bytes(pid) for name, pid in pids.items()}
        mb = 2**20
        out[kind] = {
            "flood": flood,
            "rss_mb": {
                name: {
                    "before": round(before[name] / mb, 1),
                    "peak": round(peak[name] / mb, 1),
                    "at_flood_end": round(during[name] / mb, 1),
                    f"after_{args.abuse_settle:g}s": round(after[name] / mb, 1),
                }
                for name in pids
            },
            "control": control,
        }
        log(
            f"  translator RSS {out[kind]['rss_mb']['translator']}, control p99 {control['p99_ms']} ms"
            f" ({control['acked']} acked, other codes {control['other_codes']}, lost {control['lost']})"
        )
    return out


async def soak(
    gen: LoadGenerator, args: argparse.Namespace, pid: int, result: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    rate = args.soak_rate or 0.5 * result["saturation"]["msg_per_s"]
    log(f"soak: {args.soak_duration:.0f} s at {rate:.0f} msg/s")
    samples: list[tuple[float, float]] = []
    started = time.time()

    async def sample() -> None:
        while True:
            samples.append((round(time.time() - started, 1), round(rss_bytes(pid) / 2**20, 2)))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    try:
        first, last = await gen.paced(rate, 0.0, args.soak_duration)
    finally:
        sampler.cancel()
    level = window_figures(first, last)
    level["latency"] = latency_figures(gen.latencies)
    tail = [mb for at, mb in samples if at >= args.soak_duration / 2]
    head = [mb for at, mb in samples if at < args.soak_duration / 2]
    return {
        "started": started,
        "target_msg_per_s": round(rate),
        **level,
        "rss_mb_samples": samples,
        "rss_mb_first_half_max": max(head, default=0.0),
        "rss_mb_second_half_max": max(tail, default=0.0),
    }


def gc_trace(pauses: list[list[float]], started: float) -> list[dict[str, Any]]:
    """Per 10 s bucket of the soak: collections and the longest pause."""
    buckets: dict[int, list[list[float]]] = {}
    for pause in pauses:
        if pause[0] >= started:
            buckets.setdefault(int((pause[0] - started) // 10), []).append(pause)
    return [
        {
            "from_s": key * 10,
            "collections": len(items),
            "full": sum(1 for p in items if p[1] == 2),
            "max_ms": round(max(p[2] for p in items) * 1000, 2),
        }
        for key, items in sorted(buckets.items())
    ]


async def fanout(
    gen: LoadGenerator, args: argparse.Namespace, emulator: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    import aiohttp

    base = f"http://127.0.0.1:{emulator['httpPort']}/api/devices"
    query = f"?api-version={emulator['apiVersion']}"
    headers = {"Authorization": emulator["apiToken"]} if emulator.get("apiToken") else {}
    log(f"fanout: resetMinMax to {gen.count} devices, {args.fanout_concurrency} at once")
    executes_before = gen.executes
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    examples: dict[str, Any] = {}
    queue = iter(gen.devices)

    async def worker(http: aiohttp.ClientSession) -> None:
        for device in queue:
            url = f"{base}/{device.endpoint}/components/{args.fanout_component}/commands/resetMinMax{query}"
            started = perf_counter()
            async with http.post(url, json={"responseTimeout": 30}, headers=headers) as response:
                body = await response.json()
            latencies.append(perf_counter() - started)
            outcome = f"{response.status}/{body.get('responseCode', body.get('error', {}).get('code'))}"
            if outcome not in outcomes:
                examples[outcome] = body
            outcomes[outcome] += 1

    started = perf_counter()
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(args.fanout_concurrency)))
    wall = perf_counter() - started
    return {
        "commands": len(latencies),
        "per_s": round(len(latencies) / wall, 1),
        "outcomes": dict(outcomes),
        "example_answers": examples,
        "executes_seen_by_devices": gen.executes - executes_before,
        "latency": latency_figures(latencies),
    }


async def profile(
    gen: LoadGenerator,
    args: argparse.Namespace,
    process: Any,
    work: Path,
    log: Callable[[str], None],
    *,
    idle: bool = False,
) -> dict[str, Any]:
    """Sample the translator at saturation (or, `idle`, with no traffic at all: what its idle CPU is spent
    on); the measured figures above are taken without a profiler."""
    out = work / "translator.pyspy.txt"
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if args.profile == "py-spy" and spy is None:
        log("py-spy not installed (pip install py-spy): no profile")
        return {"error": "py-spy not installed"}
    phase = "idle" if idle else "at saturation"
    log(f"profile: {args.profile} on the translator {phase} for {args.profile_duration:.0f} s")
    sampler = None
    if args.profile == "py-spy" and spy is not None:
        command = [spy, "record", "--pid", str(process.pid), "--duration", str(round(args.profile_duration))]
        command += ["--rate", "250", "--format", "raw", "--nonblocking", "-o", str(out)]
        cpu = 1 if not args.no_pin and (os.cpu_count() or 1) >= 2 else None
        sampler = subprocess.Popen(  # noqa: ASYNC220 (starts at once; waited for in a thread)
            pinned(cpu, command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    else:
        process.send_signal(signal.SIGUSR1)
    if idle:
        first = gen.snapshot()
        await asyncio.sleep(args.profile_duration)
        last = gen.snapshot()
    else:
        first, last = await gen.saturate(args.window, 0.5, args.profile_duration)
    figures = window_figures(first, last)
    if sampler is not None:
        _, errors = await asyncio.to_thread(sampler.communicate)
        if not out.exists():
            return {"error": errors.decode(errors="replace")[-2000:]}
        parsed = parse_raw_profile(out)
        if args.keep_work:
            shutil.copy(out, RESULTS / f"throughput-{args.scenario}-{args.devices}.pyspy.txt")
    else:
        process.send_signal(signal.SIGUSR2)
        prof = work / "translator.prof"
        for _ in range(100):
            if prof.exists():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        parsed = parse_cprofile(prof)
    parsed["tool"] = args.profile
    if idle:
        parsed["phase"] = "idle"
        parsed["translator_core_percent_while_profiling"] = figures["cpu"]["translator"]["core_percent"]
        return parsed
    us = figures["cpu"].get("translator", {}).get("us_per_msg", 0.0)
    parsed["msg_per_s_while_profiling"] = figures["msg_per_s"]
    parsed["translator_us_per_msg_while_profiling"] = us
    return parsed


async def run_baseline(kind: str, args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    cpu_server, cpu_client = core_plan(args)
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-baseline-")), cpu_server, cpu_client)
    server_kind, _, loop_name = kind.partition("-")
    port = free_port(socket.SOCK_DGRAM)
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_throughput",
        "--serve",
        server_kind,
        "--port",
        str(port),
    ]
    command += ["--loop", loop_name or "asyncio"]
    gen: LoadGenerator | None = None
    try:
        process, out = stack.spawn(kind, command, cpu_server)
        ready = json.loads(wait_line(out, '"ready"', 30, process))
        gen = LoadGenerator(args.devices, ("127.0.0.1", port), echo=server_kind == "echo", pids={})
        gen.pids = {"server": process.pid, "loadgen": "self"}
        await gen.open()
        rss_empty = rss_bytes(process.pid)
        log(f"{kind} ({ready['loop']}): registering")
        seconds = await gen.register_all(args.register_window, args.lifetime, args.register_timeout)
        await gen.saturate(1, 0.0, 1.0)
        result: dict[str, Any] = {
            "loop": ready["loop"],
            "registration_per_s": round(args.devices / seconds, 1),
            **(await measure_load(gen, args, log)),
            "rss_mb": [round(rss_empty / 2**20, 1), round(rss_bytes(process.pid) / 2**20, 1)],
        }
        return result
    finally:
        if gen is not None:
            gen.close()
        stack.stop_all()
        shutil.rmtree(stack.work, ignore_errors=True)


# --- report ----------------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    runs = report["runs"]
    rows = []
    header = (
        f"{'server':<14} {'msg/s':>7} {'srv µs/msg':>10} {'gen µs/msg':>10} {'emu µs/msg':>10}"
        f" {'srv core%':>9}  {'p50/p99/p99.9 ms at 25 %':>26}  {'50 %':>22}  {'75 %':>22}"
    )
    rows.append(header)
    for name, run in runs.items():
        if "saturation" not in run:
            continue
        sat = run["saturation"]
        server = "translator" if name == "translator" else "server"
        cpu = sat["cpu"]
        levels = []
        for level in ("25%", "50%", "75%"):
            lat = run["load_levels"].get(level, {}).get("latency", {})
            levels.append(
                f"{lat.get('p50_ms', 0):.2f}/{lat.get('p99_ms', 0):.2f}/{lat.get('p99_9_ms', 0):.1f}"
            )
        own = cpu.get(server, {})
        gen_us = cpu.get("loadgen", {}).get("us_per_msg", 0)
        emu_us = cpu.get("emulator", {}).get("us_per_msg", "-")
        rows.append(
            f"{name:<14} {sat['msg_per_s']:>7} {own.get('us_per_msg', 0):>10} {gen_us:>10} {emu_us:>10}"
            f" {own.get('core_percent', 0):>9}  {levels[0]:>26}  {levels[1]:>22}  {levels[2]:>22}"
        )
    lines = ["\n".join(rows)] if len(rows) > 1 else []
    ratios = report.get("ratios", {})
    if ratios:
        lines.append("\nratios (translator vs baseline):")
        for name, figures in ratios.items():
            lines.append(
                f"  {name:<14} msg/s ×{figures['throughput_ratio']}  CPU µs/msg ×{figures['cpu_ratio']}"
                f"  p99 at 50 % ×{figures['p99_at_50_ratio']}"
            )
    translator = runs.get("translator", {})
    if "abuse" in translator:
        lines.append(abuse_table(translator["abuse"]))
    elif "sessions" in translator:
        lines.append(sessions_table(translator))
    elif "registration" in translator:
        reg = translator["registration"]
        rss = translator["rss"]
        lines.append(
            f"\nregistrations: {reg['coap_2_01_per_s']}/s (CoAP 2.01); {reg['connected_per_s']}/s to"
            " connected hub sessions (cold, DPS included); translator"
            f" {reg['cpu_ms_per_registration'].get('translator')} ms CPU per registration"
        )
        lines.append(
            f"RSS: translator {rss['translator_bytes_per_device']} B per device"
            f" ({rss['translator_empty_mb']} → {rss['translator_registered_mb']} MB);"
            f" idle with all sessions open: {translator['idle']['core_percent']} % of a core"
        )
    if "profile" in translator and translator["profile"].get("phase") == "idle":
        prof = translator["profile"]
        lines.append(
            f"\ntranslator idle CPU by stage ({prof['tool']}, {prof['samples']} samples,"
            f" {prof['translator_core_percent_while_profiling']} % of a core while sampled):"
        )
        for detail, part in prof.get("details_percent", {}).items():
            if part >= 1.0:
                lines.append(f"  {detail:<40} {part:>5.1f} %")
        lines.append("  top self:")
        for leaf, part in list(prof.get("top_self_percent", {}).items())[:12]:
            lines.append(f"    {part:>5.1f} %  {leaf}")
    elif "profile" in translator and "stages_percent" in translator["profile"]:
        prof = translator["profile"]
        us = translator["saturation"]["cpu"]["translator"]["us_per_msg"]
        lines.append(f"\ntranslator CPU by stage ({prof['tool']}, at saturation; {us} µs/msg unprofiled):")
        for stage, percent in prof["stages_percent"].items():
            lines.append(f"  {stage:<14} {percent:>5.1f} %  ≈ {us * percent / 100:6.1f} µs/msg")
            for detail, part in prof.get("details_percent", {}).items():
                if detail.startswith(stage + ":") and part >= 1.0:
                    lines.append(f"      {detail:<34} {part:>5.1f} %  ≈ {us * part / 100:6.1f} µs/msg")
    return "\n".join(lines)


def abuse_table(floods: dict[str, Any]) -> str:
    lines = [
        "\nflood      datagrams  answers  translator RSS MB before/peak/after  emulator RSS MB"
        "          control p50/p99 ms  acked  lost"
    ]
    for kind, run in floods.items():
        rss = run["rss_mb"]
        t, e = (list(rss[name].values()) for name in ("translator", "emulator"))
        control = run["control"]
        lines.append(
            f"{kind:<10} {run['flood']['sent']:>9}  {run['flood']['answers']:>7}"
            f"  {t[0]:>7} / {t[1]:>7} / {t[3]:>7}"
            f"            {e[0]:>6} / {e[1]:>7} / {e[3]:>7}"
            f"  {control['p50_ms']:>7} / {control['p99_ms']:>8}  {control['acked']:>5}  {control['lost']:>4}"
        )
    return "\n".join(lines)


def sessions_table(translator: dict[str, Any]) -> str:
    figures = translator["sessions"]
    reg = translator["registration"]
    keep_alive = figures["keep_alive"]
    fds = translator.get("file_descriptors", {})
    lines = [
        f"{figures['devices']} sessions: registrations {figures['registrations_per_s']}/s to connected (cold,"
        f" DPS included; CoAP 2.01 {reg['coap_2_01_per_s']}/s), all connected after"
        f" {figures['seconds_to_all_connected']} s",
        f"{'process':<11} {'before MB':>9} {'registered MB':>13} {'B/session':>10} {'after idle MB':>13}"
        f" {'idle % core':>11} {'peak fds':>8} {'fd limit':>8}",
    ]
    for name, rss in figures["rss"].items():
        lines.append(
            f"{name:<11} {rss['before_mb']:>9} {rss['registered_mb']:>13} {rss['bytes_per_session']:>10}"
            f" {rss['after_idle_mb']:>13} {figures['idle_core_percent'].get(name, 0):>11}"
            f" {fds.get('peak', {}).get(name, '-'):>8} {fds.get('soft_limit', {}).get(name, '-'):>8}"
        )
    trimmed = figures["rss"]["translator"].get("bytes_per_session_after_malloc_trim")
    probe = translator.get("translator_memory", {}).get("growth_per_session", {})
    if trimmed is not None:
        lines.append(
            f"translator after malloc_trim(0): {trimmed} B/session of RSS growth; growth per session:"
            f" {probe.get('malloc_in_use_bytes')} B in use in malloc,"
            f" {probe.get('python_allocated_blocks')} Python blocks,"
            f" {probe.get('gc_tracked_objects')} GC-tracked objects"
        )
    covered = "covers" if keep_alive["idle_covers_ping_period"] else "does NOT cover (pings excluded)"
    lines.append(
        f"idle window {figures['idle_seconds']} s {covered} one keep-alive ping period"
        f" ({keep_alive['ping_period_s']:.0f} s at keep-alive {keep_alive['keep_alive_s']} s)"
    )
    scaled = figures["linear_to_100k"]
    lines.append(
        f"linear to 100k: translator {scaled['translator_rss_gb']} GB,"
        f" {scaled['translator_idle_core_percent']} % of a core idle (goal: 64 KB/session, 10 %)"
    )
    others = []
    for path in sorted(RESULTS.glob("throughput-sessions-*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            run = json.loads(path.read_text())["runs"]["translator"]["sessions"]
            others.append(run)
    if len(others) > 1:
        others.sort(key=lambda run: run["devices"])
        lines.append(
            "\nsaved sessions runs (marginal: RSS growth between this and the previous row, per session):"
        )
        previous: dict[str, Any] | None = None
        for run in others:
            marginal = ""
            if previous is not None and run["devices"] > previous["devices"]:
                extra = run["devices"] - previous["devices"]
                parts = []
                for name in ("translator", "emulator"):
                    grew = run["rss"][name]["registered_mb"] - run["rss"][name]["before_mb"]
                    grew -= previous["rss"][name]["registered_mb"] - previous["rss"][name]["before_mb"]
                    parts.append(f"{name} {round(grew * 2**20 / extra)} B")
                key = "bytes_per_session_after_malloc_trim"
                if key in run["rss"]["translator"] and key in previous["rss"]["translator"]:
                    grew = run["rss"]["translator"][key] * run["devices"]
                    grew -= previous["rss"]["translator"][key] * previous["devices"]
                    parts.append(f"translator after malloc_trim {round(grew / extra)} B")
                marginal = "  marginal: " + ", ".join(parts)
            rss = run["rss"]
            lines.append(
                f"  {run['devices']:>6} devices: translator {rss['translator']['bytes_per_session']} B,"
                f" emulator {rss['emulator']['bytes_per_session']} B per session;"
                f" idle {run['idle_core_percent'].get('translator')} %"
                f" over {run['idle_seconds']:.0f} s{marginal}"
            )
            previous = run
    return "\n".join(lines)


def ratios(runs: dict[str, Any]) -> dict[str, Any]:
    translator = runs.get("translator")
    if not translator or "saturation" not in translator:
        return {}
    out = {}
    t_sat = translator["saturation"]
    t_us = t_sat["cpu"]["translator"]["us_per_msg"]
    t_p99 = translator["load_levels"].get("50%", {}).get("latency", {}).get("p99_ms", float("nan"))
    for name, run in runs.items():
        if name == "translator" or "saturation" not in run:
            continue
        sat = run["saturation"]
        b_p99 = run["load_levels"].get("50%", {}).get("latency", {}).get("p99_ms", float("nan"))
        out[name] = {
            "throughput_ratio": round(t_sat["msg_per_s"] / max(1, sat["msg_per_s"]), 3),
            "cpu_ratio": round(t_us / max(0.1, sat["cpu"]["server"]["us_per_msg"]), 2),
            "p99_at_50_ratio": round(t_p99 / b_p99, 2) if b_p99 else None,
        }
    return out


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    def log(message: str) -> None:
        print(message, flush=True)

    loop_name = type(asyncio.get_running_loop()).__module__
    _, cpu_client = core_plan(args)
    if cpu_client is not None:
        os.sched_setaffinity(0, {cpu_client})
    report: dict[str, Any] = {
        "benchmark": "throughput",
        "scenario": args.scenario,
        "devices": args.devices,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "pinning": "translator/baseline server on CPU 0; emulator, load generator, py-spy on CPU 1"
            if cpu_client is not None
            else "none",
        },
        "load_generator": {"loop": loop_name, "window_per_device": args.window},
        "settings": {
            k: v for k, v in vars(args).items() if k not in ("serve", "port", "loop") and not callable(v)
        },
        "runs": {},
    }
    started = perf_counter()
    report["runs"]["translator"] = await run_translator(args, log)
    for kind in args.baselines:
        report["runs"][kind] = await run_baseline(kind, args, log)
    report["ratios"] = ratios(report["runs"])
    report["wall_seconds"] = round(perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario", choices=("throughput", "soak", "fanout", "sessions", "abuse"), default="throughput"
    )
    parser.add_argument(
        "--abuse-kinds",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(ABUSE_FLOODS),
        help="abuse: floods to run, of " + ",".join(ABUSE_FLOODS),
    )
    parser.add_argument("--abuse-scale", type=float, default=1.0, help="abuse: flood size and length factor")
    parser.add_argument("--abuse-settle", type=float, default=60.0, help="abuse: seconds before RSS 'after'")
    parser.add_argument("--control-rate", type=float, default=50.0, help="abuse: control messages/s")
    parser.add_argument("--devices", type=int, help="default 1000; sessions: 10000")
    parser.add_argument("--window", type=int, default=1, help="CONs in flight per device at saturation")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of saturation measurement")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--levels", type=lambda s: [float(x) for x in s.split(",")], default=[0.25, 0.5, 0.75]
    )
    parser.add_argument("--level-duration", type=float, default=6.0)
    parser.add_argument("--idle", type=float, help="seconds of idle measurement (default 5; sessions: 30)")
    parser.add_argument(
        "--baselines", type=lambda s: [x for x in s.split(",") if x], help="default: all; sessions: none"
    )
    parser.add_argument(
        "--profile", choices=("py-spy", "cprofile", "none"), help="default py-spy; sessions: none"
    )
    parser.add_argument("--profile-duration", type=float, default=8.0)
    parser.add_argument("--connect-rate", type=float, default=1000.0, help="translator iotc.connect_rate")
    parser.add_argument(
        "--max-sessions", type=int, help="translator iotc.max_sessions (default max(devices, 100000))"
    )
    parser.add_argument(
        "--keep-alive", type=int, help="translator iotc.keep_alive in seconds (default: the translator's)"
    )
    parser.add_argument("--register-window", type=int, default=100)
    parser.add_argument("--register-timeout", type=float, help="seconds (default max(180, devices / 10))")
    parser.add_argument("--lifetime", type=int, help="LwM2M lifetime (default 3600; sessions: 86400)")
    parser.add_argument("--soak-duration", type=float, default=60.0)
    parser.add_argument("--soak-rate", type=float, default=0.0, help="default: 50 %% of saturation")
    parser.add_argument("--fanout-concurrency", type=int, default=100)
    parser.add_argument("--fanout-component", default="temperature_0")
    parser.add_argument("--translator-log-level", default="ERROR")
    parser.add_argument("--loadgen-loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--hub",
        choices=("emulator", "mosquitto"),
        default="emulator",
        help="mosquitto: a plain MQTT broker as the hub (devices imported with connection strings, no DPS)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N > 1: serve on Redis alone, then serve --workers N, same run: CPU µs per message of each "
        "worker against the lone translator's (benchmarks/bench_workers.py)",
    )
    parser.add_argument(
        "--worker-rate", type=float, default=500.0, help="with --workers: Sends/s per process, paced phase"
    )
    parser.add_argument("--keep-work", action="store_true", help="keep logs and the raw profile")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--serve", choices=("echo", "aiocoap", "translator"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hub == "mosquitto" and args.scenario == "fanout":
        parser.error("--scenario fanout needs the emulator (commands come through its REST API)")
    if args.serve == "translator":
        return serve_translator()
    if args.serve:
        use_loop(args.loop)
        asyncio.run(serve_baseline(args.serve, args.port))
        return 0
    sessions = args.scenario == "sessions"
    if args.devices is None:
        args.devices = 10_000 if sessions else 20 if args.scenario == "abuse" else 1000
    if args.idle is None:
        args.idle = 30.0 if sessions else 5.0
    if args.profile is None:
        args.profile = "none" if sessions or args.scenario == "abuse" else "py-spy"
    if args.baselines is None:
        quiet = sessions or args.scenario == "abuse"
        args.baselines = [] if quiet else ["echo-uvloop", "echo-asyncio", "aiocoap"]
    if args.lifetime is None:
        args.lifetime = 86_400 if sessions else 3600
    if args.register_timeout is None:
        args.register_timeout = max(180.0, args.devices / 10)
    if args.max_sessions is None:
        args.max_sessions = max(args.devices, 100_000)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # children (translator, emulator) inherit it
    refusal = check_capacity(args.devices)
    if refusal is not None:
        print(refusal, file=sys.stderr)
        return 2
    use_loop(args.loadgen_loop)
    if args.workers > 1:
        from benchmarks.bench_workers import orchestrate_workers, workers_table

        report = asyncio.run(orchestrate_workers(args))
        out = args.output or RESULTS / f"throughput-workers{args.workers}-{args.devices}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(workers_table(report))
        print(f"\nwritten to {out}")
        return 0
    report = asyncio.run(orchestrate(args))
    out = args.output or RESULTS / f"throughput-{args.scenario}-{args.devices}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print()
    print(table(report))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
