"""What the gateway device's commands do to the running translator (IoT Central calls them as direct
methods on the gateway: `disconnectDevice` with a device id, `replayOutbox` with nothing)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Protocol

from translator.bridge.device import DeviceLife
from translator.gateway.model import DISCONNECT, REPLAY
from translator.iotc.protocol.methods import Invocation, MethodStatus
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class Sessions(Protocol):
    """The part of the session pool the commands use."""

    def get(self, device_id: str) -> object | None: ...

    async def close_session(self, device_id: str) -> None: ...


class GatewayCommands:
    def __init__(
        self,
        lives: MutableMapping[str, DeviceLife],
        sessions: Sessions,
        outbox_size: Callable[[], int],
    ) -> None:
        """`lives`: the bridge's device lives by device id; `outbox_size()`: messages in the outbox."""
        self._lives = lives
        self._sessions = sessions
        self._outbox_size = outbox_size

    async def __call__(self, invocation: Invocation) -> tuple[int, Any]:
        method = invocation.method
        if method.component is None and method.command == DISCONNECT:
            return await self._disconnect(invocation.payload)
        if method.component is None and method.command == REPLAY:
            return self._replay()
        return MethodStatus.NOT_FOUND, {"error": f"the gateway has no command {method}"}

    async def _disconnect(self, request: Any) -> tuple[int, Any]:
        device_id = request.get("deviceId") if isinstance(request, Mapping) else request
        if not isinstance(device_id, str) or not device_id:
            return MethodStatus.BAD_REQUEST, {"error": "the request is a device id"}
        life = self._lives.pop(device_id, None)
        if life is None:  # named by its IoT Central id rather than its LwM2M one
            found = next((key for key, each in self._lives.items() if each.device_id == device_id), None)
            life = self._lives.pop(found) if found is not None else None
        cloud_id = life.device_id if life is not None else device_id
        if life is None and self._sessions.get(cloud_id) is None:
            return MethodStatus.NOT_FOUND, {"deviceId": device_id, "disconnected": False}
        if life is not None:
            await life.close()
        await self._sessions.close_session(cloud_id)
        device_log(log, cloud_id).info("disconnected by the gateway's command")
        return MethodStatus.OK, {"deviceId": device_id, "disconnected": True}

    def _replay(self) -> tuple[int, Any]:
        lives = list(self._lives.values())
        for life in lives:
            life.telemetry.replay_now()
        return MethodStatus.OK, {"devices": len(lives), "messages": int(self._outbox_size())}
