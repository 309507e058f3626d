"""One writable property written to the device, and its acknowledgement.

IoT Plug and Play convention (https://learn.microsoft.com/azure/iot/concepts-convention, "Writable
properties"): an acknowledgement's `value` is the value the device actually uses. So when the device refuses
a write (4.xx: 400, the request's fault; 5.xx: 500, the device's), the translator reads the resource back and
acknowledges with what it holds, not with the refused value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from translator.coap import DeviceManager, DeviceResponseError, DownlinkError, ServerRefusedError
from translator.codec import DeviceMapper, PendingWrite, ack_code_for
from translator.iotc.protocol.twin import AckCode, JsonObject
from translator.lwm2m import Record

log = logging.getLogger(__name__)


async def write_desired(
    devices: DeviceManager,
    endpoint: str,
    mapper: DeviceMapper,
    pending: PendingWrite,
    within: Callable[[], float],
) -> JsonObject:
    """Write `pending` and return the acknowledgement to report; `within()` is the seconds the request
    may still wait for a sleeping device."""
    try:
        await devices.write(endpoint, pending.write.path, pending.write.records, deadline=within())
    except DeviceResponseError as error:
        held: Sequence[Record] | None = None
        try:
            held = await devices.read(endpoint, pending.write.path, deadline=within())
        except DownlinkError as read_error:
            log.info(
                "%s: reading %s back after a refused write failed: %s",
                endpoint,
                pending.write.path,
                read_error,
            )
        value = mapper.held_value(pending.desired, held)
        if value is not ...:
            mapper.acknowledged(pending.desired, value)
        return pending.failed(str(error), ack_code_for(error.code), value)
    except ServerRefusedError as error:
        return pending.failed(str(error), AckCode.REJECTED, mapper.held_value(pending.desired, None))
    except DownlinkError as error:
        return pending.failed(str(error), AckCode.FAILED, mapper.held_value(pending.desired, None))
    mapper.acknowledged(pending.desired)
    return pending.completed()
