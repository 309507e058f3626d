"""The CoAP face's sink for benchmarks of the face alone (bench_coap_ingest, bench_dtls): counts records."""

from __future__ import annotations

from typing import Any


class CountingSink:
    def __init__(self) -> None:
        self.records = 0

    def on_registered(self, registration: Any) -> None:
        pass

    def on_updated(self, registration: Any) -> None:
        pass

    def on_deregistered(self, registration: Any, reason: Any) -> None:
        pass

    def on_records(self, device: Any, records: Any, source: Any, *, confirmable: bool) -> Any:
        # Imported here: the load-generator side of these benchmarks never loads the translator.
        from translator.coap import Outcome

        self.records += len(records)
        return Outcome.NOTHING
