"""What `iotc-translator template export` resolves: the very codec `serve` gives a device, so the exported
root `@id` is the model id `serve` announces to DPS. IoT Central leaves a device Unassigned when its model id
matches no published template, so the two must never differ: both go through `CodecCatalog.from_settings`
and `CodecCatalog.for_device`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from translator.bridge.codecs import CodecCatalog
from translator.codec import Codec
from translator.lwm2m import Path, RegisteredObjects, parse_registration
from translator.settings import Settings
from translator.store import DeviceEntry
from translator.store.factory import describe, opened, store_from_settings


class ExportError(Exception):
    """The template cannot be resolved (nothing registered, no object instances…); the message says why."""


@dataclass(frozen=True, slots=True)
class Resolved:
    codec: Codec  # its model_id is what the device announces
    instances: tuple[Path, ...]  # the object instances the template was built for
    queue_mode: bool  # the device sleeps between wake-ups (LwM2M queue mode)


def for_objects(catalog: CodecCatalog, links: str, *, queue_mode: bool = False) -> Resolved:
    """The template of a device registering this object list (as in a Register payload)."""
    objects = parse_registration(links)
    if not objects.instances:
        raise ExportError('the object list names no object instances (like "</3/0>")')
    codec = catalog.for_device(None, objects)
    assert codec is not None
    return Resolved(codec, objects.instances, queue_mode)


async def for_device(settings: Settings, catalog: CodecCatalog, device_id: str) -> Resolved:
    """The template a device known to the store announced: its import entry's codec and model id, else the
    default codec for the object list of its last registration. `device_id` may also be its endpoint."""
    async with opened(store_from_settings(settings)) as store:
        entries = await store.devices()
        records = await store.registrations()
    entry = next((e for e in entries if device_id in (e.device_id, e.endpoint)), None)
    record = next(
        (
            r
            for r in records
            if device_id in (r.device_id, r.endpoint) or (entry is not None and r.endpoint == entry.endpoint)
        ),
        None,
    )
    if entry is None and record is not None:
        entry = next((e for e in entries if e.endpoint == record.endpoint), None)
    objects = _objects(record.data) if record is not None else None
    if objects is None and not (entry is not None and entry.codec):
        raise ExportError(
            f"{device_id}: no registration of this device in {describe(settings)} "
            "(it must have registered with this translator, or be imported with a codec file)"
        )
    codec = catalog.for_device(entry.codec if entry is not None else None, objects)
    assert codec is not None
    codec = _announced(codec, entry)
    instances = objects.instances if objects is not None else _codec_instances(codec)
    queue_mode = bool(record.data.get("queue_mode")) if record is not None else False
    return Resolved(codec, instances, queue_mode)


async def for_fleet(settings: Settings, catalog: CodecCatalog) -> Resolved:
    """One template for every device on the default codec (`codec.model_id`): the default codec of the union
    of the object instances of every registration in the store. A device's own template is a subset of it
    (same component names and interfaces), so it announces `codec.model_id` and finds its components."""
    if not catalog.model_id:
        raise ExportError("--fleet needs codec.model_id (one model id for the fleet) in the settings")
    async with opened(store_from_settings(settings)) as store:
        records = await store.registrations()
    instances: set[Path] = set()
    versions: dict[int, str | None] = {}
    for record in records:
        objects = _objects(record.data)
        if objects is not None:
            instances.update(objects.instances)
            versions.update(objects.objects)
    if not instances:
        raise ExportError(f"no registrations in {describe(settings)}: nothing to build a fleet template from")
    codec = catalog.for_objects(tuple(sorted(instances)), versions)
    queue_mode = any(bool(r.data.get("queue_mode")) for r in records)
    return Resolved(codec, tuple(sorted(instances)), queue_mode)


def _objects(document: dict[str, object]) -> RegisteredObjects | None:
    links = document.get("links")
    if not isinstance(links, str) or not links:
        return None
    return parse_registration(links)


def _announced(codec: Codec, entry: DeviceEntry | None) -> Codec:
    """An import entry's model id is what the device announces (bridge: entry model id, else the codec's)."""
    if entry is None or not entry.model_id or entry.model_id == codec.model_id:
        return codec
    return dataclasses.replace(codec, model_id=entry.model_id)


def _codec_instances(codec: Codec) -> tuple[Path, ...]:
    return tuple(Path(o, 0) for o in sorted({e.pattern.object_id for e in codec.entries()}))
