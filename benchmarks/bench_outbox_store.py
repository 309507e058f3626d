"""What the outbox's guarantee costs per message: SQLite (WAL, synchronous=FULL, group commit) against Redis
with AOF `appendfsync always` (and `everysec`, which would not keep the guarantee, for contrast), in one run
on one machine.

    python -m benchmarks.bench_outbox_store [--messages 5000] [--concurrency 100]

For each backend: appends one at a time (a lone device: each waits for its own fsync), then `--messages`
appends with `--concurrency` in flight (a fleet: appends share commits), then the replay's peek + remove.
Figures: wall µs per message, this process's CPU µs per message, and Redis's own CPU µs per message (INFO).
Redis is a fresh `redis-server` on a loopback port in a temporary directory. Results go to
benchmarks/results/outbox_store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks._results import write_result
from translator.store import SqliteStore, Store
from translator.store.redis_store import RedisStore

PAYLOAD = b'{"temperature_0":{"temperature":21.5},"humidity_0":{"humidity":40.25}}'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def redis_server(directory: Path, appendfsync: str) -> tuple[asyncio.subprocess.Process, str]:
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        server, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory), "--save", "",
        "--appendonly", "yes", "--appendfsync", appendfsync, "--logfile", str(directory / "redis.log"),
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = aioredis.Redis.from_url(url)
    async with asyncio.timeout(10):
        while True:
            try:
                await client.ping()
                break
            except OSError:
                await asyncio.sleep(0.05)
            except Exception:
                await asyncio.sleep(0.05)
    await client.aclose()
    return process, url


async def _server_cpu(url: str | None) -> float:
    if url is None:
        return 0.0
    client = aioredis.Redis.from_url(url)
    info = await client.info("cpu")
    await client.aclose()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _measure(store: Store, url: str | None, messages: int, concurrency: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    lone = max(200, messages // 20)
    wall, cpu, server = time.perf_counter(), time.process_time(), await _server_cpu(url)
    for n in range(lone):
        await store.outbox_append("lone", PAYLOAD, creation_time=float(n))
    result["one_at_a_time"] = {
        "messages": lone,
        "wall_us_per_message": round((time.perf_counter() - wall) / lone * 1e6, 1),
        "client_cpu_us_per_message": round((time.process_time() - cpu) / lone * 1e6, 1),
        "redis_cpu_us_per_message": round((await _server_cpu(url) - server) / lone * 1e6, 1),
    }

    async def device(index: int, count: int) -> None:
        for n in range(count):
            await store.outbox_append(f"dev-{index}", PAYLOAD, creation_time=float(n))

    wall, cpu, server = time.perf_counter(), time.process_time(), await _server_cpu(url)
    await asyncio.gather(*(device(i, messages // concurrency) for i in range(concurrency)))
    elapsed = time.perf_counter() - wall
    total = messages // concurrency * concurrency
    result["concurrent"] = {
        "messages": total,
        "in_flight": concurrency,
        "messages_per_s": round(total / elapsed),
        "wall_us_per_message": round(elapsed / total * 1e6, 1),
        "client_cpu_us_per_message": round((time.process_time() - cpu) / total * 1e6, 1),
        "redis_cpu_us_per_message": round((await _server_cpu(url) - server) / total * 1e6, 1),
    }
    wall, cpu = time.perf_counter(), time.process_time()
    removed = 0
    for index in range(concurrency):
        while batch := await store.outbox_peek(f"dev-{index}", 100):
            await store.outbox_remove([m.sequence for m in batch])
            removed += len(batch)
    result["replay_peek_remove"] = {
        "messages": removed,
        "wall_us_per_message": round((time.perf_counter() - wall) / removed * 1e6, 1),
        "client_cpu_us_per_message": round((time.process_time() - cpu) / removed * 1e6, 1),
    }
    return result


async def run(messages: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {"payload_bytes": len(PAYLOAD), "backends": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sqlite = SqliteStore(root / "translator.db", outbox_limit=10**7, outbox_device_limit=10**7)
        await sqlite.open()
        try:
            results["backends"]["sqlite_full"] = await _measure(sqlite, None, messages, concurrency)
        finally:
            await sqlite.close()
        for appendfsync in ("always", "everysec"):
            directory = root / f"redis-{appendfsync}"
            directory.mkdir()
            process, url = await redis_server(directory, appendfsync)
            store = RedisStore(url, outbox_limit=10**7, outbox_device_limit=10**7)
            try:
                await store.open()
                name = f"redis_aof_{appendfsync}"
                results["backends"][name] = await _measure(store, url, messages, concurrency)
            finally:
                await store.close()
                process.terminate()
                await process.wait()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(run(args.messages, args.concurrency))
    write_result("outbox_store.json", result)


if __name__ == "__main__":
    main()
