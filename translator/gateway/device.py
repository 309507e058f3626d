"""The gateway device's life: its session (from the pool, like any device's), its reported properties after
every connect, and its health telemetry every `gateway.telemetry_interval` seconds.

The health telemetry is the translator's view of itself at that moment: best effort, sent with QoS 1 but
never kept in the outbox (a message that cannot go out within one interval is superseded by the next).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from translator.gateway.commands import GatewayCommands
from translator.gateway.health import Figures, telemetry
from translator.gateway.settings import GatewaySettings
from translator.iotc.client.credentials import Credential
from translator.iotc.client.pool import DeviceSpec, SessionPool
from translator.iotc.client.session import DeviceSession, SessionCallbacks
from translator.iotc.protocol.errors import HubError

log = logging.getLogger(__name__)


class GatewayDevice:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        pool: SessionPool,
        credential: Credential,
        figures: Callable[[], Figures],
        properties: Callable[[], dict[str, Any]],
        commands: GatewayCommands,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self._credential = credential
        self._figures = figures
        self._properties = properties
        self._commands = commands
        self.session: DeviceSession | None = None
        self.sent = 0  # health messages the hub acknowledged
        self._reported: dict[str, Any] | None = None  # the properties last reported
        self._task: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str:
        return self.settings.device_id

    async def start(self) -> None:
        callbacks = SessionCallbacks(on_method=self._commands, on_connected=self._connected)
        spec = DeviceSpec(self.device_id, self._credential, self.settings.model_id, callbacks)
        self.session = await self._pool.session(spec)
        self._pool.pin(self.device_id)  # its commands arrive only while connected
        self._task = asyncio.create_task(self._report_health(), name="gateway-health")
        log.info("gateway %s: started (model %s)", self.device_id, self.settings.model_id)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._pool.close_session(self.device_id)

    async def report_properties(self) -> None:
        """Report version and listening ports (after every connect, and once the translator is up)."""
        session = self.session
        if session is None or not session.is_connected:
            return  # the next connect reports them
        properties = self._properties()
        try:
            await session.patch_reported(properties, timeout=self.settings.telemetry_interval)
        except (TimeoutError, HubError) as error:
            log.warning("gateway %s: properties not reported: %s", self.device_id, error)
            return
        self._reported = properties

    async def _connected(self, session: DeviceSession) -> None:
        await self.report_properties()

    async def _report_health(self) -> None:
        interval = self.settings.telemetry_interval
        before: Figures | None = None
        while True:
            await asyncio.sleep(interval)
            now = self._figures()
            message = telemetry(now, before)
            before = now
            session = self.session
            if session is None:
                continue
            if self._properties() != self._reported:  # ports opened after the first connect
                await self.report_properties()
            try:
                await session.send_telemetry(json.dumps(message).encode(), timeout=interval)
            except (TimeoutError, HubError) as error:
                log.info("gateway %s: health telemetry not sent: %s", self.device_id, error)
                continue
            self.sent += 1
