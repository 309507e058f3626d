"""Process-level tuning for a telemetry-heavy server (call once at start-up, from the entry point).

Python's default GC thresholds (700 allocations) make the cyclic collector run thousands of times per
second under load, and each full collection walks every long-lived object (registrations, sessions).
Freezing what exists after start-up moves it out of the collector's reach; larger thresholds make the
young-generation collections rarer. The hot path creates almost no reference cycles, so garbage is freed
by reference counting and memory stays flat.
"""

from __future__ import annotations

import gc


def tune_gc(threshold0: int = 50_000, threshold1: int = 20, threshold2: int = 100) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold0, threshold1, threshold2)
