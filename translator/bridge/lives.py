"""The device lives of this node: each started once however many events ask for it at the same time
(a registration, its first records, a restart's resume, an HTTP request), and ended with its session.

A life starts from the store's import entry (the device's cloud id, codec, credential, model id and
connection), gets its session (held, or ephemeral), and is kept under the device id it registered with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from translator.bridge.codec_admission import CODEC_ERRORS, CodecRefusedError
from translator.bridge.codec_choice import CodecChoice
from translator.bridge.device import DeviceLife
from translator.bridge.ephemeral import Sessions, connection_of
from translator.bridge.services import DeviceServices
from translator.coap import Registration
from translator.codec.spec import Connection
from translator.iotc.client.credentials import Credential
from translator.iotc.client.pool import DeviceSpec
from translator.ops.logs import device_log
from translator.store import DeviceEntry, Store

log = logging.getLogger(__name__)

CredentialFor = Callable[[str, DeviceEntry | None], Awaitable[Credential]]
# The check before a session reconnects (a cluster's hand-over), per device; None when alone.
BeforeReconnect = Callable[[str], Callable[[], Awaitable[str | None]]]


class DeviceLives:
    def __init__(
        self,
        *,
        store: Store,
        codecs: CodecChoice,
        sessions: Sessions,
        credential_for: CredentialFor,
        services: Callable[[], DeviceServices],
        gateway: str | None,
        before_reconnect: BeforeReconnect | None = None,
    ) -> None:
        self._store = store
        self._codecs = codecs
        self._sessions = sessions
        self._credential_for = credential_for
        self._services = services
        self._gateway = gateway  # devices register downstream of it
        self._before_reconnect = before_reconnect
        self.lives: dict[str, DeviceLife] = {}
        self._starting: dict[str, asyncio.Task[DeviceLife | None]] = {}

    def starting(self, device_id: str) -> asyncio.Task[DeviceLife | None] | None:
        """The start under way of the device's life, if one is."""
        return self._starting.get(device_id)

    async def life(
        self,
        device_id: str,
        registration: Registration | None,
        endpoint: str,
        model_id: str | None = None,
        connection: Connection | None = None,
    ) -> DeviceLife | None:
        """The device's life, started if need be (one start, whoever else waits for it)."""
        life = self.lives.get(device_id)
        if life is not None:
            return life
        starting = self._starting.get(device_id)
        if starting is None:
            starting = asyncio.create_task(
                self._start(device_id, registration, endpoint, model_id, connection),
                name=f"start-{device_id}",
            )
            self._starting[device_id] = starting
            starting.add_done_callback(lambda _task: self._starting.pop(device_id, None))
        return await starting

    async def _start(
        self,
        device_id: str,
        registration: Registration | None,
        endpoint: str,
        model_id: str | None,
        connection: Connection | None,
    ) -> DeviceLife | None:
        entry = await self._store.device_for_endpoint(endpoint)
        # An imported device is known to IoT Central by the id its import gave it, not by its endpoint name.
        cloud_id = entry.device_id if entry is not None else device_id
        try:
            codec = self._codecs.codec_for(registration, entry)
        except CODEC_ERRORS as error:
            raise CodecRefusedError(f"codec {error}") from error
        credential = await self._credential_for(cloud_id, entry)
        life = DeviceLife(
            self._services(),
            cloud_id,
            codec,
            attributes=dict(entry.attributes) if entry is not None else None,
        )
        callbacks = life.callbacks()
        if self._before_reconnect is not None:  # a node that lost the device does not reconnect it
            callbacks.before_reconnect = self._before_reconnect(device_id)
        # The operator's import wins over what a device claims (an HTTP request's modelId).
        model_id = (
            (entry.model_id if entry is not None else None)
            or model_id
            or (codec.model_id if codec is not None else None)
        )
        session = await self._sessions.open(
            DeviceSpec(cloud_id, credential, model_id, callbacks, self._gateway),
            connection_of(entry, codec, connection),
            pinned=registration is not None,
        )
        await life.start(session)
        self.lives[device_id] = life
        device_log(log, device_id).info(
            "life started as %s (codec %s)", cloud_id, codec.model_id if codec is not None else "none"
        )
        return life

    async def end(self, device_id: str) -> None:
        """The device's life ends here, and its session with it."""
        life = self.lives.pop(device_id, None)
        if life is not None:
            await life.close()
        await self._sessions.pool.close_session(life.device_id if life is not None else device_id)

    async def close(self, users: Iterable[asyncio.Task[Any]] = ()) -> None:
        """Shutdown: the starts under way and the tasks that use the lives (`users`) are cancelled and
        awaited, then every life is closed."""
        tasks = [*users, *self._starting.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(life.close() for life in self.lives.values()), return_exceptions=True)
        self.lives.clear()
