"""Device properties as IoT Central's REST API shows them, and the desired patches its writes become.

Shapes from the 2022-07-31 reference: GET properties gives each value with `$metadata.{name}` holding
`lastUpdateTime`, and for a writable property `desiredValue` and `desiredVersion`
(https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get-properties); PATCH answers
202 with `$metadata.{name}.desiredValue` (https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/update-properties);
components are nested objects, without the twin's `__t` marker. Pure functions over a `Twin`.
"""

from __future__ import annotations

from typing import Any

from emulator.state import COMPONENT_MARKER, Twin

JsonObject = dict[str, Any]


def _is_component(name: str, value: Any, components: set[str]) -> bool:
    return isinstance(value, dict) and (name in components or value.get(COMPONENT_MARKER) == "c")


def _section(section: JsonObject, component: str | None) -> JsonObject:
    if component is None:
        return section
    inner = section.get(component)
    return inner if isinstance(inner, dict) else {}


def _scope_view(twin: Twin, component: str | None, components: set[str]) -> JsonObject:
    reported = _section(twin.reported, component)
    desired = _section(twin.desired, component)
    prefix = f"{component}/" if component else ""
    view: JsonObject = {}
    metadata: JsonObject = {}
    for name, value in reported.items():
        if name == COMPONENT_MARKER or name.startswith("$"):
            continue
        if component is None and _is_component(name, value, components):
            continue
        is_ack = isinstance(value, dict) and "ac" in value and "value" in value
        view[name] = value["value"] if is_ack else value
        entry = metadata.setdefault(name, {})
        if is_ack:
            entry.update(ackCode=value.get("ac"), ackVersion=value.get("av"), ackDescription=value.get("ad"))
        updated = twin.reported_times.get(prefix + name)
        if updated:
            entry["lastUpdateTime"] = updated
    for name, value in desired.items():
        if name == COMPONENT_MARKER or name.startswith("$"):
            continue
        if component is None and _is_component(name, value, components):
            continue
        entry = metadata.setdefault(name, {})
        entry["desiredValue"] = value
        entry["desiredVersion"] = twin.desired_versions.get(prefix + name, twin.desired_version)
    if metadata:
        view["$metadata"] = metadata
    return view


def property_view(twin: Twin, component: str | None, components: set[str]) -> JsonObject:
    """GET properties: root properties and components nested, or one component's properties."""
    view = _scope_view(twin, component, components)
    if component is None:
        names = {
            name
            for section in (twin.reported, twin.desired)
            for name, value in section.items()
            if _is_component(name, value, components)
        }
        for name in sorted(names):
            view[name] = _scope_view(twin, name, components)
    return view


def desired_patch(component: str | None, body: JsonObject, components: set[str]) -> JsonObject:
    """The twin patch a REST write becomes: component properties carry IoT Central's `__t: c` marker."""
    if component is not None:
        return {component: {COMPONENT_MARKER: "c", **body}}
    patch: JsonObject = {}
    for name, value in body.items():
        if _is_component(name, value, components):
            patch[name] = {COMPONENT_MARKER: "c", **value}
        else:
            patch[name] = value
    return patch


def write_response(component: str | None, body: JsonObject, components: set[str]) -> JsonObject:
    """What PATCH/PUT properties answer: each written value as `$metadata.{name}.desiredValue`."""

    def metadata(values: JsonObject) -> JsonObject:
        return {
            "$metadata": {
                name: {"desiredValue": value} for name, value in values.items() if name != COMPONENT_MARKER
            }
        }

    if component is not None:
        return metadata(body)
    plain = {name: value for name, value in body.items() if not _is_component(name, value, components)}
    answer: JsonObject = metadata(plain) if plain else {}
    for name, value in body.items():
        if _is_component(name, value, components):
            answer[name] = metadata(value)
    return answer


def replacement(twin: Twin, component: str | None, body: JsonObject, components: set[str]) -> JsonObject:
    """PUT properties: the given values, and null (removal) for desired values the body leaves out."""
    current = _section(twin.desired, component)
    removed: JsonObject = {
        name: None
        for name, value in current.items()
        if name != COMPONENT_MARKER
        and not name.startswith("$")
        and name not in body
        and not (component is None and _is_component(name, value, components))
    }
    return {**removed, **body}
