"""The workers' metrics as one: each worker's /metrics scraped and summed (the supervisor's /metrics), or
every worker's series with a `worker` label (/metrics/workers).

Scrape-and-sum rather than prometheus_client's multiprocess mode: that mode keeps only counters, gauges and
histograms in shared files, and loses the gauges the translator computes at scrape time from the objects
that own the numbers (sessions by state, registrations, DTLS sessions: `Metrics.add_callback`); it would
also need a directory wiped at each start and a different registry set-up in every process. Scraping each
worker's own endpoint keeps the worker a plain translator, and the sum is exact for counters, histograms
and additive gauges.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

# One figure of the shared store, which every worker reports as it last saw it: summing would count the one
# Redis outbox once per worker.
SHARED = frozenset({"iotc_translator_outbox_depth"})
CREATED = "_created"  # a series' creation time: no meaning summed (and prometheus_client emits it per series)


def _families(text: str) -> Iterator[Metric]:
    for family in text_string_to_metric_families(text):
        if not family.name.endswith(CREATED):
            yield family


def summed(expositions: Iterable[str]) -> list[Metric]:
    """Every family of every worker, samples with equal name and labels added (the shared gauges: the
    largest), in the order first seen."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in expositions:
        for family in _families(text):
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            series = values[family.name]
            for sample in family.samples:
                if sample.name.endswith(CREATED):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if family.name in SHARED:
                    series[key] = max(series.get(key, sample.value), sample.value)
                else:
                    series[key] = series.get(key, 0.0) + sample.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


def labelled(expositions: Mapping[int, str]) -> list[Metric]:
    """Every worker's series with `worker="<index>"` added, one family per name."""
    merged: dict[str, Metric] = {}
    for index, text in sorted(expositions.items()):
        for family in _families(text):
            into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            for sample in family.samples:
                if not sample.name.endswith(CREATED):
                    into.add_sample(sample.name, {**sample.labels, "worker": str(index)}, sample.value)
    return list(merged.values())


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format of `families`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)
