"""Decode/encode throughput of every LwM2M content format (records per second, one core).

    python -m benchmarks.bench_lwm2m_formats [--seconds 1.0] [--output benchmarks/results/lwm2m_formats.json]

Payloads are shaped like real traffic: a Temperature instance (6 records) as Anjay reports it, the
Device object (20 records), and single values. SenML CBOR, text and TLV are the telemetry hot path.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path as FsPath

from translator.lwm2m import ContentFormat, ObjectRegistry, ObjLink, Path, Record, decode, encode

RESULTS = FsPath(__file__).resolve().parent / "results" / "lwm2m_formats.json"
BT = 1795686123.2957413


def temperature() -> list[Record]:
    base = Path(3303, 0)
    return [
        Record(base.child(5601), 13.0, BT),
        Record(base.child(5602), 39.0, BT),
        Record(base.child(5603), 0.0, BT),
        Record(base.child(5604), 42.0, BT),
        Record(base.child(5700), 26.5, BT),
        Record(base.child(5701), "Cel", BT),
    ]


def device() -> list[Record]:
    base = Path(3, 0)
    values: list[tuple[tuple[int, ...], object]] = [
        ((0,), "Open Mobile Alliance"),
        ((1,), "Lightweight M2M Client"),
        ((2,), "345000123"),
        ((3,), "1.0"),
        ((6, 0), 1),
        ((6, 1), 5),
        ((7, 0), 3800),
        ((7, 1), 5000),
        ((8, 0), 125),
        ((8, 1), 900),
        ((9,), 100),
        ((10,), 15),
        ((11, 0), 0),
        ((14,), "+02:00"),
        ((15,), "Europe/Berlin"),
        ((16,), "U"),
        ((17,), "demo"),
        ((20,), 1),
        ((21,), 32223),
        ((22, 0), ObjLink(33606, 0)),
    ]
    return [Record(base.join(rel), value) for rel, value in values]  # type: ignore[arg-type]


@dataclass
class Case:
    name: str
    content_format: ContentFormat
    base_path: Path
    records: list[Record]


def cases() -> list[Case]:
    sensor = [Record(Path(3303, 0, 5700), 26.5)]
    untimed = [r._replace(time=None) for r in temperature()]
    return [
        Case("text, 1 value", ContentFormat.TEXT, sensor[0].path, sensor),
        Case(
            "opaque, 1 value",
            ContentFormat.OPAQUE,
            Path(19, 0, 0, 0),
            [Record(Path(19, 0, 0, 0), b"\x01" * 16)],
        ),
        Case("CBOR, 1 value", ContentFormat.CBOR, sensor[0].path, sensor),
        Case("SenML CBOR, temperature", ContentFormat.SENML_CBOR, Path(3303, 0), temperature()),
        Case("SenML JSON, temperature", ContentFormat.SENML_JSON, Path(3303, 0), temperature()),
        Case("TLV, temperature", ContentFormat.TLV, Path(3303, 0), untimed),
        Case("LwM2M JSON, temperature", ContentFormat.LWM2M_JSON, Path(3303, 0), temperature()),
        Case("LwM2M CBOR, temperature", ContentFormat.LWM2M_CBOR, Path(3303, 0), untimed),
        Case("SenML CBOR, device", ContentFormat.SENML_CBOR, Path(3, 0), device()),
        Case("SenML JSON, device", ContentFormat.SENML_JSON, Path(3, 0), device()),
        Case("TLV, device", ContentFormat.TLV, Path(3, 0), device()),
        Case("LwM2M JSON, device", ContentFormat.LWM2M_JSON, Path(3, 0), device()),
        Case("LwM2M CBOR, device", ContentFormat.LWM2M_CBOR, Path(3, 0), device()),
    ]


@dataclass
class Result:
    case: str
    content_format: int
    operation: str
    payload_bytes: int
    records_per_message: int
    messages_per_s: float
    records_per_s: float
    us_per_message: float


def measure(fn: Callable[[], object], seconds: float) -> float:
    """Messages per second: best of 3 timed runs of about `seconds` / 3 each."""
    n = 1
    while True:  # calibrate the batch size to ~20 ms
        started = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - started > 0.02:
            break
        n *= 2
    best = 0.0
    for _ in range(3):
        deadline = time.perf_counter() + seconds / 3
        done = 0
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            for _ in range(n):
                fn()
            done += n
        best = max(best, done / (time.perf_counter() - started))
    return best


def run(seconds: float) -> list[Result]:
    registry = ObjectRegistry.builtin()
    results: list[Result] = []
    for case in cases():
        payload = encode(case.content_format, case.records, base_path=case.base_path, registry=registry)
        decoded = decode(case.content_format, payload, base_path=case.base_path, registry=registry, now=BT)
        assert len(decoded) == len(case.records), case.name
        operations: dict[str, Callable[[], object]] = {
            "decode": lambda c=case, p=payload: decode(  # type: ignore[misc]
                c.content_format, p, base_path=c.base_path, registry=registry, now=BT
            ),
            "encode": lambda c=case: encode(  # type: ignore[misc]
                c.content_format, c.records, base_path=c.base_path, registry=registry
            ),
        }
        for operation, fn in operations.items():
            gc.collect()
            rate = measure(fn, seconds)
            results.append(
                Result(
                    case=case.name,
                    content_format=int(case.content_format),
                    operation=operation,
                    payload_bytes=len(payload),
                    records_per_message=len(case.records),
                    messages_per_s=round(rate, 1),
                    records_per_s=round(rate * len(case.records), 1),
                    us_per_message=round(1e6 / rate, 2),
                )
            )
    return results


def table(results: list[Result]) -> str:
    head = f"{'case':<26} {'op':<7} {'bytes':>6} {'recs':>5} {'msg/s':>10} {'records/s':>11} {'us/msg':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.case:<26} {r.operation:<7} {r.payload_bytes:>6} {r.records_per_message:>5} "
            f"{r.messages_per_s:>10,.0f} {r.records_per_s:>11,.0f} {r.us_per_message:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per case and operation")
    parser.add_argument("--output", type=FsPath, default=RESULTS)
    args = parser.parse_args(argv)

    results = run(args.seconds)
    report = {
        "benchmark": "lwm2m_formats",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "seconds_per_measurement": args.seconds,
        "results": [asdict(r) for r in results],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
