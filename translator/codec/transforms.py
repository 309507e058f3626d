"""Ingress transforms of a codec (issue 19 §3): computed telemetry, static enrichment, drop and rename. Pure.

IoT Central's pattern of transforming on ingress — convert units, compute new metrics, enrich from other
sources (https://learn.microsoft.com/azure/iot-central/core/howto-transform-data) — done in the translator
instead of an IoT Edge module or the Device Bridge's function.

    transforms = codec.transforms                       # built by codec/transform_loader.py, checked at load
    run = IngressRun(transforms, attributes={"site": "Lyon"}, device_id="dev1")
    values = run.message(component, values)             # one telemetry message's values → what goes out
    run.properties()                                    # {component: {name: value}}: enrichment properties

Order per message: the inputs are remembered, computed values are added (each from the message's values,
or the last value the device gave for an input the message lacks: a notification carries only what
changed), enrichment telemetry is added, then dropped names leave and renamed ones take their new name. So
an expression reads the names the codec declares, and a dropped value can still be an input (a raw ADC
reading sent only as its scaled value).

A computed value that cannot be had for a message (an input never seen yet, a math domain error, a result
that is not a finite number) is left out of that message; the rest of it goes on. It is logged at the 1st,
10th, 100th… time per field, with the count, so a permanent fault costs a handful of lines, not one per
message.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from translator.codec.expressions import Expression, NotComputable

if TYPE_CHECKING:  # spec.py holds a Codec's Transforms: a type-only import keeps the two acyclic
    from translator.codec.spec import SemanticUnit

_LOG = logging.getLogger(__name__)

COMPUTED_SCHEMAS = ("double", "long", "boolean")


@dataclass(frozen=True, slots=True)
class Computed:
    """Telemetry computed from other telemetry of its interface (`component`, None: the root)."""

    name: str
    expression: Expression
    schema: str = "double"  # one of COMPUTED_SCHEMAS
    component: str | None = None
    display_name: str | None = None
    unit: SemanticUnit | None = None

    def typed(self, value: int | float | bool) -> int | float | bool:
        if self.schema == "boolean":
            return bool(value)
        if self.schema == "long":
            return round(value)
        return float(value)


class EnrichmentKind(enum.Enum):
    PROPERTY = "property"  # a read-only property, reported once per connection
    TELEMETRY = "telemetry"  # a field added to every telemetry message of its interface


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A per-device field from the devices CSV (`column`, matched case-insensitively) sent as `name`."""

    name: str
    column: str
    kind: EnrichmentKind = EnrichmentKind.PROPERTY
    component: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class Transforms:
    computed: tuple[Computed, ...] = ()
    enrichments: tuple[Enrichment, ...] = ()
    dropped: frozenset[str] = frozenset()  # telemetry names (declared) that are not sent
    renamed: tuple[tuple[str, str], ...] = ()  # declared telemetry name → the name it is sent as
    _renames: dict[str, str] = field(init=False, repr=False, compare=False)
    _inputs: frozenset[tuple[str | None, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_renames", dict(self.renamed))
        inputs = {(c.component, n) for c in self.computed for n in c.expression.names}
        object.__setattr__(self, "_inputs", frozenset(inputs))

    @property
    def empty(self) -> bool:
        return not (self.computed or self.enrichments or self.dropped or self.renamed)

    def exported_name(self, name: str) -> str | None:
        """The name declared telemetry `name` is sent (and exported) as; None when it is dropped."""
        if name in self.dropped:
            return None
        return self._renames.get(name, name)

    def is_input(self, component: str | None, name: str) -> bool:
        return (component, name) in self._inputs


NO_TRANSFORMS = Transforms()


def column_key(column: str) -> str:
    """Devices CSV columns are matched like its known columns: case, spaces and `_` do not count."""
    return column.strip().replace("_", "").replace(" ", "").lower()


class IngressRun:
    """One device's transforms at run time. Its state is bounded by the codec: the last value of each
    computed input, and a skip count per computed field."""

    def __init__(
        self,
        transforms: Transforms,
        *,
        attributes: Mapping[str, str] | None = None,
        device_id: str = "",
        logger: logging.Logger | None = None,
    ) -> None:
        self.device_id = device_id
        self._log = logger or _LOG
        self._attributes = {column_key(k): v for k, v in (attributes or {}).items() if v}
        self.skipped_count = 0
        self.rebind(transforms)

    def rebind(self, transforms: Transforms) -> None:
        """Run `transforms` from now on (the device's codec changed): what was remembered goes."""
        self.transforms = transforms
        self._enriched = {
            e: self._attributes[column_key(e.column)]
            for e in transforms.enrichments
            if column_key(e.column) in self._attributes
        }
        self._last: dict[tuple[str | None, str], Any] = {}
        self._skips: dict[tuple[str | None, str], int] = {}

    def message(self, component: str | None, values: dict[str, Any]) -> dict[str, Any]:
        """What one telemetry message of `component` sends, `values` being its declared names' values."""
        t = self.transforms
        if t.empty:
            return values
        for name, value in values.items():
            if t.is_input(component, name):
                self._last[(component, name)] = value
        for computed in t.computed:
            if computed.component != component or not any(n in values for n in computed.expression.names):
                continue
            inputs = {n: values.get(n, self._last.get((component, n))) for n in computed.expression.names}
            try:
                values[computed.name] = computed.typed(computed.expression.evaluate(inputs))
            except NotComputable as why:
                self._skipped(computed, str(why))
        for enrichment, value in self._enriched.items():
            if enrichment.kind is EnrichmentKind.TELEMETRY and enrichment.component == component:
                values[enrichment.name] = value
        if t.dropped or t.renamed:
            values = {out: v for n, v in values.items() if (out := t.exported_name(n)) is not None}
        return values

    def properties(self) -> dict[str | None, dict[str, str]]:
        """The enrichment properties this device has a value for, per component."""
        found: dict[str | None, dict[str, str]] = {}
        for enrichment, value in self._enriched.items():
            if enrichment.kind is EnrichmentKind.PROPERTY:
                found.setdefault(enrichment.component, {})[enrichment.name] = value
        return found

    def _skipped(self, computed: Computed, reason: str) -> None:
        key = (computed.component, computed.name)
        count = self._skips.get(key, 0) + 1
        self._skips[key] = count
        self.skipped_count += 1
        if _is_power_of_ten(count):
            where = computed.name if computed.component is None else f"{computed.component}.{computed.name}"
            self._log.warning(
                # The device id travels in the record (ops.logs' convention: `device=<id>` in text lines).
                "computed telemetry %s skipped (%d time%s so far): %s; the rest was sent",
                where,
                count,
                "" if count == 1 else "s",
                reason,
                extra={"device_id": self.device_id},
            )


def _is_power_of_ten(count: int) -> bool:
    while count % 10 == 0:
        count //= 10
    return count == 1
