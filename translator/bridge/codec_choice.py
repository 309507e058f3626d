"""Which codec a device's life maps with, and how it follows the device's registration: chosen at the
life's start (the import's codec, else the default for its objects), adopted when a life started without
objects meets its registration, and rebuilt when a Register or Update brings other object instances (a
new instance gets its component)."""

from __future__ import annotations

from translator.bridge.codecs import CodecCatalog
from translator.bridge.device import DeviceLife
from translator.coap import Registration
from translator.codec import Codec
from translator.iotc.client.pool import SessionPool
from translator.store import DeviceEntry, Store


class CodecChoice:
    def __init__(self, catalog: CodecCatalog, store: Store, pool: SessionPool) -> None:
        self._catalog = catalog
        self._store = store
        self._pool = pool

    def codec_for(self, registration: Registration | None, entry: DeviceEntry | None) -> Codec | None:
        return self._catalog.for_device(
            entry.codec if entry is not None else None,
            registration.objects if registration is not None else None,
        )

    async def adopt_objects(self, life: DeviceLife, registration: Registration) -> None:
        """A (re-)registration reaches a life: its codec comes from, or follows, its objects."""
        if life.codec is None:
            # Started without a registration (resumed for its outbox, or plain CBOR): now it has objects.
            entry = await self._store.device_for_endpoint(registration.endpoint)
            life.adopt_codec(self.codec_for(registration, entry))
        elif (
            life.registration is not None
            and life.registration.objects.instances != registration.objects.instances
        ):
            # Registered again with other objects: the codec follows (a new instance gets its component).
            entry = await self._store.device_for_endpoint(registration.endpoint)
            life.adopt_codec(self.codec_for(registration, entry))
        self._pool.pin(life.device_id)  # its codec may have come with its first records already

    async def reshape(self, life: DeviceLife, registration: Registration) -> None:
        """The device's object instances changed: its codec is rebuilt for them (a new instance gets its
        component), then its properties are read and it is observed again."""
        entry = await self._store.device_for_endpoint(registration.endpoint)
        life.adopt_codec(self.codec_for(registration, entry))
        if life.registration is registration:  # not updated again meanwhile (that update reshapes itself)
            life.registered(registration)

    def before_records(self, life: DeviceLife, registration: Registration | None) -> None:
        """A life without a codec (resumed after a restart for its outbox, before the device registered
        again) takes it from the device's current registration before any record is mapped: the records in
        hand must not wait for the registration's own task to catch up, nor be mapped by no codec. Without a
        registration `DeviceLife.deliver` refuses them (5.03 + Max-Age)."""
        if life.codec is None and registration is not None:
            # No import entry names a codec for this device (the life would have loaded it at start), so
            # the codec is the default one for its objects, as a registration's set-up would choose.
            life.adopt_codec(self.codec_for(registration, None))
