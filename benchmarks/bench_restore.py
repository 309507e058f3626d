"""What keeping registrations across a restart costs: journal writes, and the restore at start.

    python -m benchmarks.bench_restore [--devices 10000] [--batch 200]

Registrations like a real client's (objects 1, 3, 3303, 6; one composite observation of five paths) are
written to a fresh SQLite store in journal-sized transactions, then read back, planned and restored into a
CoAP face that is not started (the restore happens before the socket opens). Results go to
benchmarks/results/restore.json.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path as FsPath
from typing import Any

from benchmarks._results import write_result
from translator.coap import CoapSettings, Lwm2mServer
from translator.coap.identity import DeviceIdentity
from translator.coap.registration import Registration, parse_objects
from translator.coap.sink import NullSink
from translator.coap.snapshot import (
    ObservationSnapshot,
    RegistrationSnapshot,
    plan_restore,
    to_document,
)
from translator.lwm2m import Path
from translator.store import RegistrationRecord, SqliteStore

LINKS = b'</>;rt="oma.lwm2m";ct="60 110 112 11543",</1/0>,</3/0>,</3303/0>,</3303/1>,</6/0>'
OBSERVED = (Path(3303, 0, 5700), Path(3303, 1, 5700), Path(6, 0, 0), Path(6, 0, 1), Path(3, 0, 9))


def _snapshot(n: int, wall: float) -> RegistrationSnapshot:
    objects = parse_objects(40, LINKS)
    assert objects is not None
    endpoint = f"urn:imei:{350000000000000 + n}"
    registration = Registration(
        reg_id=f"b{n:x}",
        identity=DeviceIdentity.of(endpoint),
        peer=("::ffff:10.0.0.1", 10000 + n % 50000, 0, 0),
        lifetime=86400,
        version="1.2",
        binding="U",
        queue_mode=n % 4 == 0,
        objects=objects,
        registered_at=0.0,
        updated_at=0.0,
    )
    observation = ObservationSnapshot(n.to_bytes(8, "big"), OBSERVED, 112, True)
    return RegistrationSnapshot(registration, (observation,), wall + 86400)


def _size(directory: FsPath) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(devices: int, batch: int) -> dict[str, Any]:
    wall = time.time()
    records = [
        RegistrationRecord(s.registration.endpoint, s.registration.device_id, to_document(s), wall)
        for s in (_snapshot(n, wall) for n in range(devices))
    ]
    with tempfile.TemporaryDirectory() as directory:
        path = FsPath(directory) / "translator.db"
        async with SqliteStore(path) as store:
            started = time.perf_counter()
            for i in range(0, devices, batch):
                await store.write_registrations(records[i : i + batch], [])
            write_s = time.perf_counter() - started
        size = _size(FsPath(directory))
        rss_before = _rss_mb()
        async with SqliteStore(path) as store:
            started = time.perf_counter()
            kept = await store.registrations()
            read_s = time.perf_counter() - started
            started = time.perf_counter()
            plan = plan_restore(
                ((r.endpoint, r.device_id, r.data) for r in kept),
                grace=30.0,
                now=time.monotonic(),
                wall_now=wall,
            )
            plan_s = time.perf_counter() - started
            server = Lwm2mServer(CoapSettings(port=0), NullSink())
            started = time.perf_counter()
            taken = server.restore(plan.restore)
            restore_s = time.perf_counter() - started
    assert len(taken) == devices
    return {
        "devices": devices,
        "journal_batch": batch,
        "write_per_registration_us": round(write_s / devices * 1e6, 1),
        "store_bytes_per_registration": round(size / devices),
        "read_s": round(read_s, 3),
        "plan_s": round(plan_s, 3),
        "restore_into_coap_face_s": round(restore_s, 3),
        "start_to_socket_open_s": round(read_s + plan_s + restore_s, 3),
        "peak_rss_mb_before_restore": round(rss_before, 1),
        "peak_rss_mb_after_restore": round(_rss_mb(), 1),
        "sessions_back_at_default_rate_s": round(devices / CoapSettings().setup_rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(run(args.devices, args.batch))
    write_result("restore.json", result)


if __name__ == "__main__":
    main()
