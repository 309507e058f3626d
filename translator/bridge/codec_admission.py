"""The codec check of a Register (the CoAP face's RegisterGate, before the claim): a device whose import
names a codec file that does not load — edited after `devices import`, or naming an object the registry
has no model for — is refused 4.03 Forbidden, the codec's error (file, line, field) as diagnostic payload,
and the operator reads one warning naming the device and the file.

Accepted with 2.01, the device would believe itself registered while its life could not start: every Send
answered 5.00 with a traceback in the log, its data translated by nobody. 4.03 is what the LwM2M Transport
spec lists for a registration the server does not allow, and what Leshan answers when its Authorizer
refuses one. Nothing failed is cached (CodecCatalog.load keeps only codecs that loaded): once the file is
mended, the device's next Register is accepted.

A codec broken while the translator was down meets a registration restored from the previous run, which
no Register precedes: its life cannot start (`CodecRefusedError`), and its Sends are answered 5.03 with
Max-Age and the same error (bridge.py), so the device keeps its data and tries again, never 2.04.
"""

from __future__ import annotations

import logging
from pathlib import Path

from translator.bridge.codecs import CodecCatalog
from translator.coap import BackPressure, DeviceIdentity, Forbidden
from translator.codec import CodecError
from translator.lwm2m import DdfError
from translator.ops.logs import device_log
from translator.store import Store, StoreError

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # Max-Age when the store cannot say which codec the device has
CODEC_RETRY = 30  # Max-Age of a Send held back for a codec that does not load: an operator mends it
# What loading a codec file raises when the file is wrong, names an object without a model, or is gone.
CODEC_ERRORS = (CodecError, DdfError, OSError)


class CodecRefusedError(Exception):
    """A device's codec does not load: its life cannot start, nothing it sends can be translated."""


class CodecAdmission:
    def __init__(self, store: Store, catalog: CodecCatalog, *, retry_after: int = RETRY_AFTER) -> None:
        self._store = store
        self._catalog = catalog
        self._retry_after = retry_after

    async def __call__(self, identity: DeviceIdentity) -> None:
        try:
            entry = await self._store.device_for_endpoint(identity.endpoint)
        except StoreError as error:
            # The life's start would read the same entry: accepting now would only move the failure there.
            raise BackPressure(
                f"the device table is unreadable ({error}): register again later",
                retry_after=self._retry_after,
            ) from error
        if entry is None or not entry.codec:
            return  # the default codec for its objects: the objects check at admission covers it
        try:
            self._catalog.load(Path(entry.codec))
        except CODEC_ERRORS as error:
            device_log(log, entry.device_id).warning(
                "endpoint=%s: Register refused 4.03: its codec does not load (%s); it registers once "
                "the file loads (iotc-translator codec check)",
                identity.endpoint,
                error,
            )
            raise Forbidden(f"codec {error}") from error
