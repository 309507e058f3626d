"""How a device authenticates to IoT Central: its imported certificate or key, else one derived from the
enrollment group (a group key, or a certificate minted by the enrollment CA)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from translator.coap import Forbidden
from translator.iotc.client.credentials import (
    CommonNameTooLongError,
    Credential,
    SymmetricKey,
    X509Identity,
    mint_device_certificate,
)
from translator.settings import IotcSettings
from translator.store import DeviceEntry


class NoCredentialsError(Forbidden):
    """Nothing says how this device authenticates (no group key, no enrollment CA, no imported key), or its
    id cannot be a certificate CN. A `Forbidden`, so the device's CoAP request is answered 4.03 with why."""


async def credential_for(
    iotc: IotcSettings, certs: Path, device_id: str, entry: DeviceEntry | None
) -> Credential:
    """The device's credential; a certificate minted for it is written under `certs`."""
    if entry is not None and entry.certificate and entry.private_key:
        return X509Identity(Path(entry.certificate), Path(entry.private_key))
    if entry is not None and entry.symmetric_key:
        return SymmetricKey(entry.symmetric_key)
    if iotc.group_key:
        return SymmetricKey.from_group(iotc.group_key, device_id)
    if iotc.x509_ca_cert is not None and iotc.x509_ca_key is not None:
        try:
            return await asyncio.to_thread(
                mint_device_certificate, device_id, iotc.x509_ca_cert, iotc.x509_ca_key, certs
            )
        except CommonNameTooLongError as error:
            raise NoCredentialsError(str(error)) from None
    raise NoCredentialsError(f"no credentials for {device_id}: configure iotc.group_key or import the device")
