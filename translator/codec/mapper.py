"""The mapping API the bridge calls, one `DeviceMapper` per device. Pure: no I/O, no clocks.

    mapper = DeviceMapper(codec, device_id="dev1")
    uplink = mapper.uplink(records)            # → telemetry messages + one reported-properties patch
    plan = mapper.desired(desired_properties)  # → LwM2M writes to send + acknowledgements to report now
    ack = plan.writes[0].completed()           #   … and the acknowledgement once the device answered
    call = mapper.command("temperature_0*resetMinMax", payload)  # → the LwM2M operation to perform
    result = call.succeeded(records)           #   … and the method response (status, payload)

Its only state is per device and bounded: the last desired version per writable property (so values
the device reports later acknowledge the right version) and which unmapped resources were logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from translator.codec.errors import BadCommandRequest, UnknownCommand, ValueRejected
from translator.codec.spec import Codec, Command, Operation, Property, Telemetry
from translator.codec.transforms import IngressRun
from translator.codec.values import IDENTITY, Scaling, execute_argument, from_json, to_json
from translator.iotc.protocol.errors import MethodNameError
from translator.iotc.protocol.methods import MethodStatus, split_method_name
from translator.iotc.protocol.twin import (
    AckCode,
    Acknowledgement,
    DesiredProperty,
    JsonObject,
    Twin,
    desired_properties,
    merge_patches,
    pending_acknowledgements,
    reported_patch,
)
from translator.lwm2m import Path, Record, ResourceModel, Value
from translator.ops.logs import DEVICE_FIELD

_LOG = logging.getLogger(__name__)
# Distinct unmapped resources logged per device; past this they are only counted.
MAX_LOGGED_UNMAPPED = 64
DEVICE_REPORTED = "reported by device"


# --- uplink ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelemetryMessage:
    """One telemetry message: values of one component measured at one device time (None: unknown)."""

    component: str | None
    values: dict[str, Any]
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    telemetry: tuple[TelemetryMessage, ...]
    reported: JsonObject | None  # one reported-properties patch, or None when nothing to report
    unmapped: int  # records of this batch that no codec entry maps


# --- desired properties ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lwm2mWrite:
    """A Write of one resource: one record, or one per resource instance of a multiple resource."""

    path: Path
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A desired value on its way to the device; acknowledge it with the device's answer."""

    desired: DesiredProperty
    write: Lwm2mWrite

    def completed(self) -> JsonObject:
        return self.desired.acknowledge(AckCode.COMPLETED, "completed")

    def failed(self, reason: str, code: int = AckCode.FAILED, value: Any = ...) -> JsonObject:
        """The acknowledgement when the device refused (4.xx: pass 400) or could not be reached (500);
        `value` is what the device holds, when known (Ellipsis: not known, the desired value goes)."""
        return self.desired.acknowledge(code, reason, value)


def ack_code_for(coap_code: int) -> AckCode:
    """The acknowledgement code for a refused write: the device's fault (5.xx) is 500, the request's (4.xx)
    400, as docs/codec.md says."""
    return AckCode.FAILED if coap_code >= 0xA0 else AckCode.REJECTED


@dataclass(frozen=True, slots=True)
class DesiredPlan:
    writes: tuple[PendingWrite, ...]
    acknowledgements: tuple[JsonObject, ...]  # refusals (ac 400 with the reason), to report right away


# --- commands --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lwm2mOperation:
    """What to ask the device: Execute (with argument text), Read, or Write (with records)."""

    operation: Operation
    path: Path
    arguments: str | None = None
    records: tuple[Record, ...] = ()


@dataclass(frozen=True, slots=True)
class MethodResult:
    status: int
    payload: Any = None


@dataclass(frozen=True, slots=True)
class CommandCall:
    """A command turned into an LwM2M operation; turns the device's answer into the method response."""

    command: Command
    operation: Lwm2mOperation

    def succeeded(self, records: Sequence[Record] = ()) -> MethodResult:
        if self.command.operation is not Operation.READ:
            return MethodResult(MethodStatus.OK, None)
        if self.command.resource is not None:
            return MethodResult(MethodStatus.OK, _resource_value(self.command.resource, records, IDENTITY))
        values: dict[str, Any] = {}
        for read_field in self.command.fields:
            rid = read_field.resource.id
            mine = [r for r in records if len(r.path) >= 3 and r.path[2] == rid]
            if mine:
                values[read_field.name] = _resource_value(read_field.resource, mine, IDENTITY)
        return MethodResult(MethodStatus.OK, values)

    def failed(self, status: int, reason: str) -> MethodResult:
        """The operation failed; `status` comes from the CoAP face's one mapping (coap/statuses.py)."""
        return MethodResult(status, {"error": reason})


def _resource_value(resource: ResourceModel, records: Sequence[Record], scaling: Scaling) -> Any:
    if resource.multiple:
        return {
            str(r.path[3]): to_json(r.value, scaling)
            for r in records
            if len(r.path) == 4 and r.value is not None
        }
    for r in records:
        if r.value is not None:
            return to_json(r.value, scaling)
    return None


# --- the mapper ------------------------------------------------------------------------------------


class DeviceMapper:
    """Translate one device's traffic with `codec`."""

    def __init__(
        self,
        codec: Codec,
        *,
        device_id: str,
        logger: logging.Logger | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        """`attributes`: the device's extra devices-CSV columns, for the codec's enrichment."""
        self.codec = codec
        self.device_id = device_id
        self._log = logger or _LOG
        self.ingress = IngressRun(codec.transforms, attributes=attributes, device_id=device_id, logger=logger)
        self._desired_versions: dict[tuple[str | None, str], int] = {}
        # Per writable property: the value of our last acknowledgement (so the device reporting that same
        # value does not overwrite a 200 with a 203), and the last value the device reported.
        self._acknowledged: dict[tuple[str | None, str], Any] = {}
        self._device_values: dict[tuple[str | None, str], Any] = {}
        self._logged_unmapped: set[tuple[int, int]] = set()
        # Per geopoint/vector: the last value of each field (bounded by the codec's compounds).
        self._compounds: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.unmapped_count = 0

    def rebind(self, codec: Codec) -> None:
        """The device's objects changed shape: map with `codec` from now on. What is known per property
        (desired versions, acknowledged and reported values) stays: names of the instances kept do not
        change."""
        self.codec = codec
        self._logged_unmapped.clear()
        self.ingress.rebind(codec.transforms)

    # uplink

    def uplink(self, records: Iterable[Record]) -> Uplink:
        """Records from a notification, Send or Read → telemetry messages and one reported patch."""
        messages: dict[tuple[str | None, float | None], dict[str, Any]] = {}
        reported: dict[str | None, dict[str, Any]] = {}
        unmapped = 0
        for record in records:
            entry = self.codec.entry_for(record.path)
            if entry is None or len(record.path) != (4 if entry.resource.multiple else 3):
                unmapped += 1
                self._note_unmapped(record.path)
                continue
            if record.value is None:
                continue
            value = to_json(record.value, entry.scaling)
            if isinstance(entry, Telemetry):
                values = messages.setdefault((entry.component, record.time), {})
                if entry.member is not None:
                    values.setdefault(entry.member.name, {})[entry.member.field] = value
                else:
                    _put(values, entry.name, value, record.path if entry.resource.multiple else None)
            else:
                values = reported.setdefault(entry.component, {})
                _put(values, entry.name, value, record.path if entry.resource.multiple else None)
        self.unmapped_count += unmapped
        patches: list[JsonObject] = []
        for comp, values in reported.items():
            entries = {name: self._reported(comp, name, v) for name, v in values.items()}
            kept = {name: entry for name, entry in entries.items() if entry is not ...}
            if kept:
                patches.append(reported_patch(kept, comp))
        for key, values in messages.items():
            self._complete_compounds(key[0], values)
            messages[key] = self.ingress.message(key[0], values)
        return Uplink(
            telemetry=tuple(
                TelemetryMessage(comp, values, None if t is None else datetime.fromtimestamp(t, UTC))
                for (comp, t), values in messages.items()
                if values
            ),
            reported=merge_patches(patches) if patches else None,
            unmapped=unmapped,
        )

    def enrichment(self) -> JsonObject | None:
        """The reported patch of the codec's enrichment properties this device has values for, or None."""
        found = self.ingress.properties()
        return merge_patches([reported_patch(v, c) for c, v in found.items()]) if found else None

    def _complete_compounds(self, component: str | None, values: dict[str, Any]) -> None:
        """A geopoint or vector goes out whole: fields this batch lacks (a notification carries only the
        resource that changed) come from the last ones the device gave; until every required field is
        known (latitude and longitude; x, y and z) the value is held back, not sent half empty."""
        for name in [n for n, v in values.items() if isinstance(v, dict)]:
            entry = self._compound_entry(component, name)
            if entry is None or entry.member is None:
                continue
            known = self._compounds.setdefault((component, name), {})
            known.update({k: v for k, v in values[name].items() if v is not None})
            if all(f in known for f in entry.member.schema.required):
                values[name] = {f: known[f] for f in entry.member.schema.fields if f in known}
            else:
                del values[name]

    def _compound_entry(self, component: str | None, name: str) -> Telemetry | None:
        for entry in self.codec.telemetry:
            if entry.component == component and entry.member is not None and entry.member.name == name:
                return entry
        return None

    def _reported(self, component: str | None, name: str, value: Any) -> Any:
        """The reported entry for a property value; Ellipsis when nothing is to be reported."""
        entry = self.codec.entry_named(component, name)
        if not (isinstance(entry, Property) and entry.writable):
            return value
        key = (component, name)
        self._device_values[key] = value
        if key in self._acknowledged and self._acknowledged[key] == value:
            return ...  # already acknowledged with this very value: a 203 would only hide the 200
        self._acknowledged.pop(key, None)
        # A writable property is reported in acknowledgement form; ac 203 says "the device's own value",
        # av the last desired version we handled so pending_acknowledgements sees it as current.
        version = self._desired_versions.get(key, 0)
        return Acknowledgement(value, AckCode.DEVICE_DEFAULT, version, DEVICE_REPORTED).document()

    def _note_unmapped(self, path: Path) -> None:
        key = (path[0] if path else -1, path[2] if len(path) > 2 else -1)
        if key in self._logged_unmapped or len(self._logged_unmapped) >= MAX_LOGGED_UNMAPPED:
            return
        self._logged_unmapped.add(key)
        # Not a warning: the bridge names what a codec does not translate once per registration (INFO).
        self._log.debug(
            "unmapped resource %s: codec %s has no entry for it; counting, not forwarding",
            path,
            self.codec.source,
            extra={DEVICE_FIELD: self.device_id},
        )

    # desired properties

    def acknowledged(self, prop: DesiredProperty, value: Any = ...) -> None:
        """Remember that `prop` was acknowledged with `value` (Ellipsis: its desired value)."""
        self._desired_versions[(prop.component, prop.name)] = max(
            prop.version, self._desired_versions.get((prop.component, prop.name), 0)
        )
        self._acknowledged[(prop.component, prop.name)] = prop.value if value is ... else value

    def adopt_twin(self, twin: Twin) -> None:
        """After a (re)connect, learn what the twin already settled: the desired versions (so a value the
        device reports is acknowledged at the current version) and the values acknowledged 200 (so the
        device reporting the same value at its next registration does not turn them into 203s)."""
        components = self.codec.component_names
        pending = {(p.component, p.name) for p in pending_acknowledgements(twin, components)}
        for prop in desired_properties(twin.desired, components):
            key = (prop.component, prop.name)
            entry = self.codec.entry_named(prop.component, prop.name)
            if key in pending or not (isinstance(entry, Property) and entry.writable):
                continue
            self._desired_versions[key] = max(prop.version, self._desired_versions.get(key, 0))
            ack = Acknowledgement.from_document(twin.reported_value(prop.name, prop.component))
            if ack is not None and ack.ac == AckCode.COMPLETED:
                self._acknowledged.setdefault(key, ack.value)

    def held_value(self, prop: DesiredProperty, records: Sequence[Record] | None) -> Any:
        """The JSON value the device holds for `prop`: from `records` (a read-back) when they have it,
        else the last value the device reported, else Ellipsis (unknown)."""
        entry = self.codec.entry_named(prop.component, prop.name)
        if isinstance(entry, Property) and records:
            value = _resource_value(entry.resource, records, entry.scaling)
            if value is not None and value != {}:
                return value
        return self._device_values.get((prop.component, prop.name), ...)

    def desired(self, properties: Iterable[DesiredProperty]) -> DesiredPlan:
        """Desired properties → LwM2M writes, plus immediate refusals (ac 400 with the reason)."""
        writes: list[PendingWrite] = []
        refusals: list[JsonObject] = []
        for prop in properties:
            if prop.value is None:
                continue  # removed from the desired document: nothing to write, nothing to acknowledge
            entry = self.codec.entry_named(prop.component, prop.name)
            if not (isinstance(entry, Property) and entry.writable):
                refusals.append(prop.acknowledge(AckCode.REJECTED, f"{prop.name} is not a writable property"))
                continue
            self._desired_versions[(prop.component, prop.name)] = prop.version
            try:
                records = _typed_records(entry.pattern.concrete(), entry.resource, prop.value, entry.scaling)
            except ValueRejected as exc:
                refusals.append(prop.acknowledge(AckCode.REJECTED, exc.reason))
                continue
            writes.append(PendingWrite(prop, Lwm2mWrite(entry.pattern.concrete(), records)))
        return DesiredPlan(tuple(writes), tuple(refusals))

    # commands

    def command(self, method_name: str, payload: Any) -> CommandCall:
        """A method call → the LwM2M operation. Raises `UnknownCommand` (404) or `BadCommandRequest` (400)."""
        try:
            method = split_method_name(method_name)
        except MethodNameError as exc:
            raise UnknownCommand(str(exc)) from None
        entry = self.codec.entry_named(method.component, method.command)
        if not isinstance(entry, Command):
            raise UnknownCommand(f"no command {method_name!r} in template {self.codec.model_id}")
        path = entry.pattern.concrete()
        if entry.operation is Operation.EXECUTE:
            return CommandCall(
                entry, Lwm2mOperation(Operation.EXECUTE, path, _execute_arguments(entry, payload))
            )
        if entry.operation is Operation.READ:
            return CommandCall(entry, Lwm2mOperation(Operation.READ, path))
        assert entry.resource is not None
        try:
            records = _typed_records(path, entry.resource, payload, IDENTITY)
        except ValueRejected as exc:
            raise BadCommandRequest(exc.reason) from None
        return CommandCall(entry, Lwm2mOperation(Operation.WRITE, path, records=records))


def _put(values: dict[str, Any], name: str, value: Any, instance_path: Path | None) -> None:
    if instance_path is None:
        values[name] = value
    else:
        values.setdefault(name, {})[str(instance_path[3])] = value


def _typed_records(path: Path, resource: ResourceModel, value: Any, scaling: Scaling) -> tuple[Record, ...]:
    if not resource.multiple:
        return (Record(path, from_json(value, resource, scaling)),)
    if not isinstance(value, Mapping) or not value:
        raise ValueRejected(f'{resource.name}: expected an object of instance id → value, like {{"0": …}}')
    records: list[Record] = []
    for key, item in value.items():
        if not (
            isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 5 and int(key) <= 65535
        ):
            raise ValueRejected(f"{resource.name}: {key!r} is not a resource instance id (0-65535)")
        typed: Value = from_json(item, resource, scaling)
        records.append(Record(path.child(int(key)), typed))
    return tuple(sorted(records, key=lambda r: r.path))


def _execute_arguments(command: Command, payload: Any) -> str | None:
    if not command.arguments:
        return None  # IoT Central sends null or "" for a command without a request; nothing to pass
    if payload is None:
        return None
    if not isinstance(payload, Mapping):
        raise BadCommandRequest(
            f"{command.name}: expected an object with {', '.join(a.name for a in command.arguments)}"
        )
    known = {a.name: a for a in command.arguments}
    unknown = sorted(set(payload) - set(known))
    if unknown:
        raise BadCommandRequest(f"{command.name}: unknown argument(s) {', '.join(map(str, unknown))}")
    parts: list[str] = []
    for arg in sorted((known[k] for k in payload), key=lambda a: a.digit):
        value = payload[arg.name]
        if value is None or value is False:
            continue
        try:
            _check_argument(arg.schema, value, arg.name)
            parts.append(execute_argument(arg.digit, value, arg.name))
        except ValueRejected as exc:
            raise BadCommandRequest(exc.reason) from None
    return ",".join(parts) or None


def _check_argument(schema: str, value: Any, label: str) -> None:
    ok = {
        "string": isinstance(value, str),
        "long": isinstance(value, int) and not isinstance(value, bool),
        "double": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }[schema]
    if not ok:
        raise ValueRejected(f"{label}: expected {schema}, got {value!r}")
