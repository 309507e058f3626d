"""The translator's metrics, in a registry of its own (prometheus_client's default registry is global)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Callback(Collector):
    """Gauges read at scrape time from the objects that own the numbers (no second copy to keep in sync)."""

    def __init__(
        self, read: Callable[[], dict[str, dict[tuple[str, ...], float]]], labels: dict[str, list[str]]
    ):
        self._read = read
        self._labels = labels

    def collect(self):  # type: ignore[no-untyped-def]
        for name, series in self._read().items():
            family = GaugeMetricFamily(name, name.replace("_", " "), labels=self._labels.get(name, []))
            for label_values, value in series.items():
                family.add_metric(list(label_values), value)
            yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            "iotc_translator_messages_in", "Telemetry messages from devices", ["source"], registry=r
        )
        self.records_in = Counter("iotc_translator_records_in", "LwM2M records from devices", registry=r)
        self.messages_out = Counter(
            "iotc_translator_messages_out", "Telemetry messages acknowledged by IoT Central", registry=r
        )
        self.outboxed = Counter(
            "iotc_translator_outboxed",
            "Telemetry messages kept in the outbox while a hub was away",
            registry=r,
        )
        self.replayed = Counter(
            "iotc_translator_replayed", "Outbox messages replayed to IoT Central", registry=r
        )
        self.errors = Counter("iotc_translator_errors", "Errors by kind", ["kind"], registry=r)
        # `kind` is the refusal's error class, e.g. UnrepresentableValue for NaN, infinities, bad times.
        self.refused = Counter(
            "iotc_translator_coap_refused",
            "Device requests answered with an error code, by code and kind",
            ["code", "kind"],
            registry=r,
        )
        self.commands = Histogram(
            "iotc_translator_command_seconds",
            "Time from a command's arrival to its answer",
            ["outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )

    def count_refused(self, code: int, kind: str) -> None:
        """The CoAP face's `on_refused` hook."""
        self.refused.labels(code=f"{code >> 5}.{code & 0x1F:02d}", kind=kind).inc()

    def add_callback(
        self, read: Callable[[], dict[str, dict[tuple[str, ...], float]]], labels: dict[str, list[str]]
    ) -> None:
        """Gauges computed at scrape time, e.g. sessions by state from the session pool."""
        self.registry.register(_Callback(read, labels))

    def render(self) -> bytes:
        return generate_latest(self.registry)
