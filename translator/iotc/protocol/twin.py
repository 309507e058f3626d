"""Twin documents and IoT Plug and Play property conventions, as IoT Central uses them.

- Read-only property, root: reported `{"name": value}`; in a component:
  `{"comp": {"__t": "c", "name": value}}`.
- Writable property: desired `{"name": value, "$version": v}` (component entries carry `"__t": "c"`),
  acknowledged with reported `{"name": {"value": value, "ac": 200, "av": v, "ad": "completed"}}`.
- Desired patches arrive only while connected, so after every (re)connect the session GETs the
  twin and acknowledges whatever `pending_acknowledgements` returns.

Documents are plain JSON values (`dict[str, Any]`) so they go straight to `json.dumps`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeGuard

from translator.iotc.protocol.errors import TwinFormatError

COMPONENT_MARKER = "__t"
COMPONENT_MARKER_VALUE = "c"
VERSION = "$version"

JsonObject = dict[str, Any]


class AckCode(IntEnum):
    """`ac` of a writable-property acknowledgement (HTTP-like, per the IoT Plug and Play conventions)."""

    COMPLETED = 200
    IN_PROGRESS = 202
    DEVICE_DEFAULT = 203
    REJECTED = 400
    FAILED = 500


def load_json_object(payload: bytes | str, what: str = "document") -> JsonObject:
    """Decode a JSON object, raising `TwinFormatError` for anything else."""
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TwinFormatError(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise TwinFormatError(f"{what} is not a JSON object")
    return value


def _version_of(section: Mapping[str, Any], what: str) -> int:
    version = section.get(VERSION)
    # bool is an int subclass; `true` is not a version.
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise TwinFormatError(f"{what} has no valid $version")
    return version


def is_component(value: Any) -> TypeGuard[dict[str, Any]]:
    """Whether a twin entry is a component (an object carrying `"__t": "c"`)."""
    return isinstance(value, dict) and value.get(COMPONENT_MARKER) == COMPONENT_MARKER_VALUE


# --- the twin document ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Twin:
    """The device's view of its twin: `{"desired": {...}, "reported": {...}}`, each with `$version`."""

    desired: Mapping[str, Any]
    reported: Mapping[str, Any]

    @property
    def desired_version(self) -> int:
        return _version_of(self.desired, "desired section")

    @property
    def reported_version(self) -> int:
        return _version_of(self.reported, "reported section")

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Twin:
        desired = document.get("desired")
        reported = document.get("reported")
        if not isinstance(desired, dict) or not isinstance(reported, dict):
            raise TwinFormatError("twin lacks a desired or reported object")
        _version_of(desired, "desired section")
        _version_of(reported, "reported section")
        return cls(desired=desired, reported=reported)

    @classmethod
    def from_json(cls, payload: bytes | str) -> Twin:
        return cls.from_document(load_json_object(payload, "twin"))

    def reported_value(self, name: str, component: str | None = None) -> Any:
        """A reported entry (the raw value or acknowledgement object), or None when absent."""
        section: Any = self.reported if component is None else self.reported.get(component)
        if not isinstance(section, dict):
            return None
        return section.get(name)


# --- reported patches ----------------------------------------------------------------------------


def reported_patch(values: Mapping[str, Any], component: str | None = None) -> JsonObject:
    """A reported-properties patch setting `values` at the root or inside `component`.

    A value of None deletes the property (JSON merge patch semantics).
    """
    for name in values:
        _check_name(name)
    if component is None:
        return dict(values)
    _check_name(component)
    return {component: {COMPONENT_MARKER: COMPONENT_MARKER_VALUE, **values}}


def _check_name(name: str) -> None:
    if not name or name.startswith("$") or name == COMPONENT_MARKER:
        raise TwinFormatError(f"{name!r} cannot be a property or component name")


def merge_patches(patches: Iterable[Mapping[str, Any]]) -> JsonObject:
    """Combine reported patches into one, later values winning, components merged key by key.

    Lets a session coalesce several property updates into a single PATCH under twin throttling.
    """
    merged: JsonObject = {}
    for patch in patches:
        for name, value in patch.items():
            current = merged.get(name)
            if is_component(value) and is_component(current):
                merged[name] = {**current, **value}
            else:
                merged[name] = dict(value) if is_component(value) else value
    return merged


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A writable-property acknowledgement: `{"value", "ac", "av", "ad"}`."""

    value: Any
    ac: int
    av: int
    ad: str | None = None

    def document(self) -> JsonObject:
        ack: JsonObject = {"value": self.value, "ac": self.ac, "av": self.av}
        if self.ad is not None:
            ack["ad"] = self.ad
        return ack

    @classmethod
    def from_document(cls, document: Any) -> Acknowledgement | None:
        """The acknowledgement in a reported entry, or None if the entry is not one."""
        if not isinstance(document, dict) or "value" not in document:
            return None
        ac, av, ad = document.get("ac"), document.get("av"), document.get("ad")
        if not isinstance(ac, int) or isinstance(ac, bool) or not isinstance(av, int) or isinstance(av, bool):
            return None
        return cls(value=document["value"], ac=ac, av=av, ad=ad if isinstance(ad, str) else None)


def ack_patch(
    name: str,
    value: Any,
    *,
    version: int,
    code: int = AckCode.COMPLETED,
    description: str | None = "completed",
    component: str | None = None,
) -> JsonObject:
    """The reported patch acknowledging writable property `name` at desired `version`."""
    ack = Acknowledgement(value=value, ac=int(code), av=version, ad=description)
    return reported_patch({name: ack.document()}, component)


# --- desired patches -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DesiredProperty:
    """One writable property value from a desired patch or twin; `value` None means removed."""

    name: str
    value: Any
    version: int
    component: str | None = None

    def acknowledge(
        self, code: int = AckCode.COMPLETED, description: str | None = "completed", value: Any = ...
    ) -> JsonObject:
        """The reported patch acknowledging this property.

        `value` defaults to the desired value; pass the value actually applied when the device
        clamped or rejected it (Ellipsis is the "not given" marker because None is a JSON value).
        """
        return ack_patch(
            self.name,
            self.value if value is ... else value,
            version=self.version,
            code=code,
            description=description,
            component=self.component,
        )


def desired_properties(
    desired: Mapping[str, Any], components: Collection[str] | None = None
) -> list[DesiredProperty]:
    """Flatten a desired patch or desired section into properties, root and component.

    An entry is a component when it carries `"__t": "c"`, or when its name is in `components`
    (the model's component names) and its value is an object: patches that remove a whole
    component may lack the marker. `$`-prefixed keys (`$version`, `$metadata`) are not properties.
    """
    version = _version_of(desired, "desired patch")
    found: list[DesiredProperty] = []
    for name, value in desired.items():
        if name.startswith("$"):
            continue
        in_model = components is not None and name in components
        if is_component(value) or (in_model and isinstance(value, dict)):
            for inner, inner_value in value.items():
                if inner.startswith("$") or inner == COMPONENT_MARKER:
                    continue
                found.append(DesiredProperty(inner, inner_value, version, component=name))
        else:
            found.append(DesiredProperty(name, value, version))
    return found


def parse_desired_patch(
    payload: bytes | str, components: Collection[str] | None = None
) -> list[DesiredProperty]:
    """Decode a desired-patch message body."""
    return desired_properties(load_json_object(payload, "desired patch"), components)


def pending_acknowledgements(twin: Twin, components: Collection[str] | None = None) -> list[DesiredProperty]:
    """Desired properties the device has not yet settled at the twin's current desired `$version`.

    Over MQTT the twin carries no per-property versions, only the section's `$version`, so an
    acknowledgement with an older `av` may still be current (another property moved the version).
    It counts as settled when its `value` equals the desired value and it is not 202 (in progress:
    work interrupted by a restart must be redone). Anything else — no acknowledgement, another
    value, or in progress — is pending and is returned with the current version to acknowledge.
    """
    pending: list[DesiredProperty] = []
    for prop in desired_properties(twin.desired, components):
        ack = Acknowledgement.from_document(twin.reported_value(prop.name, prop.component))
        if ack is None or ack.ac == AckCode.IN_PROGRESS:
            pending.append(prop)
        elif ack.av >= prop.version:
            continue
        elif ack.value != prop.value:
            pending.append(prop)
    return pending
