"""DTLS cost of the CoAP face: handshakes per second per core, server µs per telemetry message over DTLS vs
plain CoAP in the same run, and resident memory per open DTLS session.

    python -m benchmarks.bench_dtls                      # 2000 sessions, 16 devices x 1500 Sends per kind
    python -m benchmarks.bench_dtls --sessions 500 --messages 300

The translator's CoAP face (Lwm2mServer with a counting sink, PSKs in memory) runs in a child process; this
process is the clients (pyOpenSSL through the same wrapper). Server CPU comes from /proc/<pid>/stat, RSS
from /proc/<pid>/statm, so the clients' own cost is not counted. Results: benchmarks/results/dtls.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path as FsPath
from typing import Any, cast

from benchmarks._measure import CpuMeter, rss_bytes
from benchmarks._sink import CountingSink

RESULTS = FsPath(__file__).resolve().parent / "results"
KEY = b"benchmark-psk-0123456789"
SEND = b'[{"bn":"/3303/0/","n":"5700","v":21.5}]'


# --- server side (child process) ------------------------------------------------------------------------


async def _serve(sessions: int) -> None:
    from translator.coap import CoapSettings, Lwm2mServer
    from translator.coap.credentials import MemoryCredentials, PskCredential

    credentials = MemoryCredentials(
        [PskCredential(f"bench-{i:05d}", KEY, f"bench-{i:05d}") for i in range(sessions)]
    )
    settings = CoapSettings(
        host="127.0.0.1", port=0, dtls_port=0, tick=1.0, dtls_max_sessions=sessions + 10,
        dtls_max_handshakes=sessions + 10, max_registrations=sessions * 2,
    )  # fmt: skip
    async with Lwm2mServer(settings, CountingSink(), credentials=credentials) as server:
        assert server.dtls is not None
        print(json.dumps({"plain": server.port, "dtls": server.dtls.port}), flush=True)
        done = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), done.set)
        await done.wait()
        print(json.dumps(server.stats()), flush=True)


# --- clients --------------------------------------------------------------------------------------------


def _request(mid: int, path: list[str], query: list[str], content_format: int, payload: bytes) -> bytes:
    from translator.coap import wire

    options = wire.path_options(path) + [(15, item.encode()) for item in query]
    options.append((12, content_format.to_bytes(1 if content_format < 256 else 2, "big")))
    return wire.encode(wire.CON, 2, mid, mid.to_bytes(2, "big"), sorted(options, key=lambda o: o[0]), payload)


class Peer(asyncio.DatagramProtocol):
    """One device: plain CoAP, or DTLS with its own PSK identity and session."""

    def __init__(self, identity: str | None) -> None:
        from translator.coap.dtls.openssl import ClientContext

        self.conn = ClientContext(identity.encode(), KEY).connection() if identity else None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.mid = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)

    def _flush(self) -> None:
        assert self.conn is not None and self.transport is not None
        data = self.conn.outgoing()
        if data:
            self.transport.sendto(data)

    async def handshake(self) -> None:
        conn = self.conn
        assert conn is not None
        async with asyncio.timeout(30):
            while True:
                done = conn.handshake()
                self._flush()
                if done:
                    return
                try:
                    async with asyncio.timeout(1.0):
                        conn.feed(await self.queue.get())
                except TimeoutError:
                    conn.handle_timeout()

    async def request(self, path: list[str], query: list[str], content_format: int, payload: bytes) -> bytes:
        assert self.transport is not None
        self.mid = (self.mid + 1) & 0xFFFF
        data = _request(self.mid, path, query, content_format, payload)
        async with asyncio.timeout(10):
            if self.conn is None:
                self.transport.sendto(data)
                return await self.queue.get()
            self.conn.write(data)
            self._flush()
            while True:
                self.conn.feed(await self.queue.get())
                answers = self.conn.read()
                if answers:
                    return answers[0]


async def _peer(port: int, identity: str | None) -> Peer:
    _, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Peer(identity), remote_addr=("127.0.0.1", port)
    )
    return peer


async def _register(peer: Peer, endpoint: str) -> None:
    answer = await peer.request(["rd"], [f"ep={endpoint}", "lt=3600"], 40, b"</3303/0>")
    assert answer[1] == 65, answer[:4].hex()  # 2.01


async def _sends(peers: list[Peer], messages: int, meter: CpuMeter) -> tuple[float, float]:
    async def one(peer: Peer) -> None:
        for _ in range(messages):
            answer = await peer.request(["dp"], [], 110, SEND)
            assert answer[1] == 68, answer[:4].hex()  # 2.04

    meter.start()
    await asyncio.gather(*(one(peer) for peer in peers))
    return meter.stop()


async def _bench(args: argparse.Namespace) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bench_dtls", "--serve", str(args.sessions),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        ports = json.loads(await child.stdout.readline())
        meter = CpuMeter(child.pid)
        rss_before = rss_bytes(child.pid)
        peers: list[Peer] = []
        limit = asyncio.Semaphore(args.concurrency)

        async def connect(i: int) -> Peer:
            async with limit:
                peer = await _peer(ports["dtls"], f"bench-{i:05d}")
                await peer.handshake()
                return peer

        meter.start()
        peers = list(await asyncio.gather(*(connect(i) for i in range(args.sessions))))
        hs_cpu, hs_wall = meter.stop()
        rss_after = rss_bytes(child.pid)

        dtls_peers = peers[: args.devices]
        plain_peers = [await _peer(ports["plain"], None) for _ in range(args.devices)]
        for i, peer in enumerate(dtls_peers):
            await _register(peer, f"bench-{i:05d}")
        for i, peer in enumerate(plain_peers):
            await _register(peer, f"plain-{i:05d}")
        rounds: dict[str, list[tuple[float, float]]] = {"plain": [], "dtls": []}
        for _ in range(args.rounds):  # alternated, so both see the same machine load
            rounds["plain"].append(await _sends(plain_peers, args.messages, meter))
            rounds["dtls"].append(await _sends(dtls_peers, args.messages, meter))
        count = args.devices * args.messages
        per_message = {
            kind: {
                "server_cpu_us": round(min(cpu for cpu, _ in values) / count * 1e6, 1),
                "wall_us": round(min(wall for _, wall in values) / count * 1e6, 1),
            }
            for kind, values in rounds.items()
        }
        child.stdin.close()
        stats = json.loads(await child.stdout.readline())
        for peer in [*peers, *plain_peers]:
            if peer.transport is not None:
                peer.transport.close()
    finally:
        if child.returncode is None:
            child.stdin.close() if child.stdin is not None else None
        async with asyncio.timeout(30):
            await child.wait()
    return {
        "sessions": args.sessions,
        "handshake_server_cpu_us": round(hs_cpu / args.sessions * 1e6, 1),
        "handshakes_per_core_s": round(args.sessions / hs_cpu) if hs_cpu else None,
        "handshakes_wall_per_s": round(args.sessions / hs_wall),
        "rss_per_session_kb": round((rss_after - rss_before) / args.sessions / 1024, 1),
        "telemetry": per_message,
        "dtls_extra_server_us": round(
            per_message["dtls"]["server_cpu_us"] - per_message["plain"]["server_cpu_us"], 1
        ),
        "devices": args.devices,
        "messages_per_device": args.messages,
        "server_stats": {k: v for k, v in stats.items() if k.startswith("dtls") or k in ("hot", "slow")},
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return
    result = asyncio.run(_bench(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dtls.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
