"""What the relay costs (issue 17 §4): a downlink relayed from the owner through another node's socket to a
device and its answer back, one at a time, against a fresh redis-server — with the durability the cluster's
Redis runs with (AOF `appendfsync always`: every XADD waits for an fsync) and without (`everysec`).

    python -m benchmarks.bench_relay [--requests 2000]

Two figures per Redis: `hop_round_trip` (node A's entry to B's stream, B's entry straight back: two XADDs
and two XREADs) and `relayed_downlink` (A → B's stream → B's UDP socket → a device on loopback that answers
→ B's socket → A's stream → A). Results (µs, p50 and p99) go to benchmarks/results/relay.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks._measure import latency_summary
from benchmarks._results import write_result
from benchmarks.bench_outbox_store import redis_server
from translator.cluster.redis_relay import RedisRelay
from translator.cluster.relay_policy import Direction, Relayed


class _Echo(asyncio.DatagramProtocol):
    """The device: answers every datagram at once."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class _Socket(asyncio.DatagramProtocol):
    """Node B's socket: what the device answers goes to A's stream."""

    def __init__(self, relay: RedisRelay) -> None:
        self.relay = relay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.post("node-a", Relayed(Direction.TO_OWNER, "node-b", tuple(addr), data))


async def _measure(url: str, requests: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    client = aioredis.Redis.from_url(url)
    waiting: list[asyncio.Future[bytes]] = []

    def at_a(entry: Relayed) -> None:
        if waiting and not waiting[0].done():
            waiting[0].set_result(entry.data)

    a = RedisRelay(client, "node-a", on_entry=at_a)
    b = RedisRelay(client, "node-b")
    device, _ = await loop.create_datagram_endpoint(_Echo, local_addr=("127.0.0.1", 0))
    b_socket, b_proto = await loop.create_datagram_endpoint(lambda: _Socket(b), local_addr=("127.0.0.1", 0))
    peer = tuple(device.get_extra_info("sockname"))
    await a.start()
    await b.start()
    result: dict[str, Any] = {}
    try:

        def hop(entry: Relayed) -> None:
            b.post("node-a", Relayed(Direction.TO_OWNER, "node-b", entry.peer, entry.data))

        send: Callable[[Relayed], None] = lambda e: b_proto.transport.sendto(e.data, e.peer)  # noqa: E731
        for name, on_b in (("hop_round_trip", hop), ("relayed_downlink", send)):
            b.on_entry = on_b
            samples = []
            for n in range(requests):
                future: asyncio.Future[bytes] = loop.create_future()
                waiting[:] = [future]
                data = n.to_bytes(4, "big")
                start = time.perf_counter()
                a.post("node-b", Relayed(Direction.TO_DEVICE, "node-a", peer, data))
                async with asyncio.timeout(5):
                    assert await future == data
                samples.append((time.perf_counter() - start) * 1e6)
            result[name] = latency_summary(samples)
    finally:
        await a.stop()
        await b.stop()
        device.close()
        b_socket.close()
        await client.aclose()
    return result


async def run(requests: int) -> dict[str, Any]:
    result: dict[str, Any] = {"requests": requests}
    for fsync in ("always", "everysec"):
        with tempfile.TemporaryDirectory() as tmp:
            process, url = await redis_server(Path(tmp), fsync)
            try:
                result[f"appendfsync_{fsync}"] = await _measure(url, requests)
            finally:
                process.terminate()
                await process.wait()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    result = asyncio.run(run(args.requests))
    write_result("relay.json", result)


if __name__ == "__main__":
    main()
