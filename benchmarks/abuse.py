"""Floods for `bench_throughput --scenario abuse`, each run in its own process (a hostile client, not the
load generator's event loop): the translator's RSS and a control device's latency are measured meanwhile.

    python -m benchmarks.abuse get --port 5683 --count 150000 --seconds 30

Kinds:
* `get`: well-formed `CON GET /nothing` from 500 source ports (issue 12: 150k took RSS 117 → 508 MB);
* `block1`: Block1 transfers of 1 KB blocks from 500 source ports, each continued until refused;
* `register`: CON Register with a new endpoint name each (20,000 in 20 s in issue 12), never answering the
  translator's downlinks, as a flooder would not;
* `random`: random datagrams (a version-1 header most of the time, anything after it).

Prints one JSON line: datagrams sent, answers received, answer codes.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator

CON, GET, POST = 0, 1, 2
OPT_URI_PATH, OPT_URI_QUERY, OPT_BLOCK1 = 11, 15, 27


def _option(last: int, number: int, value: bytes) -> bytes:
    delta, length = number - last, len(value)
    head, ext = 0, b""
    for shift, part in ((4, delta), (0, length)):
        if part < 13:
            head |= part << shift
        elif part < 269:
            head |= 13 << shift
            ext += bytes((part - 13,))
        else:
            head |= 14 << shift
            ext += (part - 269).to_bytes(2, "big")
    return bytes((head,)) + ext + value


def message(
    code: int, mid: int, token: bytes, options: list[tuple[int, bytes]], payload: bytes = b""
) -> bytes:
    out = bytes((0x40 | len(token), code, mid >> 8 & 0xFF, mid & 0xFF)) + token
    last = 0
    for number, value in options:
        out += _option(last, number, value)
        last = number
    return out + (b"\xff" + payload if payload else b"")


def datagrams(kind: str, count: int, sources: int) -> Iterator[tuple[int, bytes]]:
    """(source index, datagram) pairs."""
    rng = random.Random(12)
    for i in range(count):
        mid = i & 0xFFFF
        token = i.to_bytes(4, "big")
        source = i % sources
        if kind == "get":
            yield source, message(GET, mid, token, [(OPT_URI_PATH, b"nothing")])
        elif kind == "block1":
            number = i // sources  # every source runs one transfer, one block per round
            value = (number << 4) | 0x08 | 6  # block `number`, more to come, 1024 bytes
            block = value.to_bytes((value.bit_length() + 7) // 8, "big")
            options = [
                (OPT_URI_PATH, b"rd"),
                (OPT_URI_QUERY, f"ep=blk{source}".encode()),
                (OPT_BLOCK1, block),
            ]
            yield source, message(POST, mid, token, options, b"<" * 1024)
        elif kind == "register":
            options = [
                (OPT_URI_PATH, b"rd"),
                (OPT_URI_QUERY, f"ep=flood-{i}".encode()),
                (OPT_URI_QUERY, b"lt=300"),
            ]
            yield source, message(POST, mid, token, options, b"</3303/0>")
        elif kind == "random":
            size = rng.randrange(0, 64)
            data = bytearray(rng.randbytes(size))
            if size and rng.random() < 0.9:
                data[0] = 0x40 | (data[0] & 0x3F)
            yield source, bytes(data)
        else:
            raise ValueError(kind)


def run(kind: str, port: int, count: int, seconds: float, sources: int) -> dict[str, object]:
    socks = []
    for _ in range(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    codes: Counter[str] = Counter()
    received = errors = 0

    def drain() -> None:
        nonlocal received
        for sock in socks:
            while True:
                try:
                    data = sock.recv(2048)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                received += 1
                if len(data) >= 2:
                    codes[f"{data[1] >> 5}.{data[1] & 31:02d}"] += 1

    start = time.perf_counter()
    for sent, (source, data) in enumerate(datagrams(kind, count, sources)):
        due = start + seconds * sent / count
        while (wait := due - time.perf_counter()) > 0:
            time.sleep(min(wait, 0.005))
        try:
            socks[source].sendto(data, ("127.0.0.1", port))
        except OSError:
            errors += 1
        if sent % 200 == 0:
            drain()
    end = time.perf_counter() + 2.0
    while time.perf_counter() < end:
        drain()
        time.sleep(0.05)
    for sock in socks:
        sock.close()
    return {
        "kind": kind,
        "sent": count,
        "seconds": round(time.perf_counter() - start - 2.0, 1),
        "answers": received,
        "send_errors": errors,
        "codes": dict(codes.most_common(8)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.abuse", description=__doc__)
    parser.add_argument("kind", choices=("get", "block1", "register", "random"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sources", type=int, default=500)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.kind, args.port, args.count, args.seconds, args.sources)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
