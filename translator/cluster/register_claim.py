"""The claim of a device before its Register is answered, on a shared store (the CoAP face's RegisterGate).

A Register that reaches this node claims the device for it (`Trigger.REGISTRATION`: its datagrams are here
now). When Redis cannot be reached the claim cannot be made, and the Register is refused 5.03 with Max-Age
rather than accepted: accepting would connect the device to its hub without knowing whether another node
holds it — closing that node's connection, which could not check the owner either (a fight for the whole
outage) — and its registration could not be saved. The device registers again after Max-Age; telemetry of
devices already registered keeps flowing meanwhile (the hub's PUBACK needs no Redis).
"""

from __future__ import annotations

import logging

from translator.cluster.ownership import DeviceClaims, Trigger
from translator.coap import BackPressure, DeviceIdentity
from translator.store import StoreError

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # Max-Age of the refusal: seconds before the device registers again


class RegisterClaim:
    def __init__(self, ownership: DeviceClaims, *, retry_after: int = RETRY_AFTER) -> None:
        self._ownership = ownership
        self._retry_after = retry_after

    async def __call__(self, identity: DeviceIdentity) -> None:
        try:
            await self._ownership.claim(identity.device_id, Trigger.REGISTRATION)
        except StoreError as error:
            log.warning(
                "endpoint=%s device=%s: Register refused 5.03 (Max-Age %d): its owner cannot be claimed: %s",
                identity.endpoint,
                identity.device_id,
                self._retry_after,
                error,
            )
            raise BackPressure(
                "the shared store is unreachable: register again later", retry_after=self._retry_after
            ) from error
