"""What ownership costs: a claim (Lua compare-and-set with an epoch bump), an Update's claim of a device
already owned (no write), and a fence check, one at a time against a fresh redis-server (AOF always).

    python -m benchmarks.bench_ownership [--devices 2000]

Results (µs per call, p50 and p99) go to benchmarks/results/ownership.json.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks._measure import latency_summary
from benchmarks._results import write_result
from benchmarks.bench_outbox_store import redis_server
from translator.cluster.ownership import Trigger
from translator.cluster.redis_ownership import RedisOwnership


async def _timed(count: int, call: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    samples = []
    for n in range(count):
        start = time.perf_counter()
        await call(n)
        samples.append((time.perf_counter() - start) * 1e6)
    return latency_summary(samples)


async def run(devices: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = await redis_server(Path(tmp), "always")
        client = aioredis.Redis.from_url(url)
        try:
            a, b = RedisOwnership(client, "node-a"), RedisOwnership(client, "node-b")
            await a.start()
            await b.start()
            result = {
                "devices": devices,
                "first_claim": await _timed(devices, lambda n: a.claim(f"d{n}", Trigger.REGISTRATION)),
                "update_of_own_device": await _timed(
                    devices, lambda n: a.claim(f"d{n}", Trigger.REGISTRATION)
                ),
                "claim_from_live_node": await _timed(
                    devices, lambda n: b.claim(f"d{n}", Trigger.REGISTRATION)
                ),
                "fence_check": await _timed(devices, lambda n: b.still_mine(f"d{n}")),
                "redis_used_memory_bytes": int((await client.info("memory"))["used_memory"]),
            }
            await a.stop()
            await b.stop()
        finally:
            await client.aclose()
            process.terminate()
            await process.wait()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    args = parser.parse_args()
    result = asyncio.run(run(args.devices))
    write_result("ownership.json", result)


if __name__ == "__main__":
    main()
