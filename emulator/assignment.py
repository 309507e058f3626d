"""Which device template a device gets: decided once, when it first connects.

IoT Central assigns a device to the template whose id is the model id the device announces, when that
template is published in the application; otherwise the device stays Unassigned until an operator
migrates it, and later connections do not change that
(https://learn.microsoft.com/azure/iot-central/core/concepts-device-templates#assign-a-device-to-a-device-template).
Pure operations on the application's state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from emulator.state import Application, Device
from emulator.templates import template_problem

log = logging.getLogger("emulator.assignment")

# Where the embedded emulator finds a template nobody published yet (the translator's own export).
TemplateSource = Callable[[str], dict[str, Any] | None]


def publish(application: Application, template_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Store a device template (create or replace); the stored form, with its id and a new etag."""
    previous = application.templates.get(template_id)
    revision = int(str(previous.get("etag", '"0"')).strip('"') or 0) + 1 if previous else 1
    stored = {**body, "@id": template_id, "etag": f'"{revision}"'}
    application.templates[template_id] = stored
    log.info("device template %s published", template_id)
    return stored


def assign(application: Application, device: Device, model_id: str, source: TemplateSource | None) -> bool:
    """Decide the device's template if not yet decided; True when this call decided it."""
    if device.template_decided:
        return False
    device.template_decided = True
    if model_id and model_id not in application.templates and source is not None:
        body = source(model_id)
        if body is not None and not template_problem(model_id, body):
            publish(application, model_id, body)
    if model_id in application.templates:
        device.template = model_id
        log.info("device %s assigned to template %s", device.device_id, model_id)
    else:
        log.warning(
            "device %s: model id %r is not a published device template: Unassigned",
            device.device_id,
            model_id,
        )
    return True
