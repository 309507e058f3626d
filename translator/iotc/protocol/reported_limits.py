"""Reported-property patches within IoT Hub's twin limits, checked before they are sent (pure).

The desired and reported sections are at most 32 KB each and each property at most 4 KB; IoT Hub rejects
any operation that would exceed them —
https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits and
https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins#device-twin-size
A property over 4 KB is left out of its patch, with the reason; a patch that would take the section (as
this session last saw it, merged with what it sent since) over 32 KB is refused whole, with the reason.
Splitting a patch would not help: the limit is on the section, not on one message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_PROPERTY_BYTES = 4 * 1024
MAX_SECTION_BYTES = 32 * 1024
COMPONENT_MARKER = "__t"


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386, as IoT Hub applies a patch to a twin section: null deletes, objects merge."""
    result = dict(target)
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, Mapping):
            inner = result.get(name)
            result[name] = merge_patch(inner if isinstance(inner, Mapping) else {}, value)
        else:
            result[name] = value
    return result


def within_limits(
    patch: Mapping[str, Any],
    section: Mapping[str, Any],
    *,
    max_property_bytes: int = MAX_PROPERTY_BYTES,
    max_section_bytes: int = MAX_SECTION_BYTES,
) -> tuple[dict[str, Any], list[str]]:
    """The patch without properties over the property limit, and why each was left out; when even that
    would take `section` over its limit, an empty patch and that reason."""
    kept: dict[str, Any] = {}
    refused: list[str] = []
    for name, value in patch.items():
        if isinstance(value, Mapping) and value.get(COMPONENT_MARKER) == "c":
            inner: dict[str, Any] = {}
            for prop, prop_value in value.items():
                size = json_size(prop_value)
                if prop != COMPONENT_MARKER and size > max_property_bytes:
                    refused.append(f"{name}.{prop} is {size} bytes, over the {max_property_bytes} byte limit")
                else:
                    inner[prop] = prop_value
            if len(inner) > 1:
                kept[name] = inner
        elif (size := json_size(value)) > max_property_bytes:
            refused.append(f"{name} is {size} bytes, over the {max_property_bytes} byte limit")
        else:
            kept[name] = value
    after = json_size(merge_patch({k: v for k, v in section.items() if not k.startswith("$")}, kept))
    if kept and after > max_section_bytes:
        refused.append(
            f"the reported section would be {after} bytes, over the {max_section_bytes} byte limit"
        )
        return {}, refused
    return kept, refused
