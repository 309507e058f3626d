"""A device's commands: IoT Central's direct methods and offline commands (cloud-to-device messages with a
`method-name`), run on the device as Execute, Read or Write.

A direct method is answered before `iotc.command_deadline` (IoT Central gives up at 30 s). An offline
command is kept in the store first, so it survives a restart, and run when the device can be reached,
until its time to live passes (IoT Central's default for queued commands, 24 h).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from translator.bridge.ownership_gate import owned_elsewhere
from translator.bridge.services import Deadlines, DeviceView, Spawn
from translator.coap import DeviceManager, DownlinkError, NotRegisteredError
from translator.coap.statuses import method_status
from translator.codec import CommandError, Operation
from translator.iotc.protocol.methods import Invocation
from translator.iotc.protocol.property_bag import PropertyBag
from translator.ops.metrics import Metrics
from translator.store import PendingCommand, Store

OFFLINE_COMMAND_TTL = 24 * 3600.0  # IoT Central's default for queued commands


class CommandRunner:
    def __init__(
        self,
        device: DeviceView,
        *,
        downlinks: DeviceManager,
        deadlines: Deadlines,
        store: Store,
        metrics: Metrics,
        spawn: Spawn,
        log: logging.LoggerAdapter[Any],
        owns: Callable[[], Awaitable[bool]],
    ) -> None:
        self._device = device
        self._downlinks = downlinks
        self._deadlines = deadlines
        self._store = store
        self._metrics = metrics
        self._spawn = spawn
        self._log = log
        self._owns = owns

    async def resume_offline(self) -> None:
        """At the start of the device's life: the offline commands kept for it run (again)."""
        for command in await self._store.commands(self._device.device_id):
            self._spawn(self._run_offline(command), f"offline-{command.name}")

    async def on_method(self, invocation: Invocation) -> tuple[int, Any]:
        started = time.monotonic()
        name = str(invocation.method)
        moved = await self._moved(name)
        status, payload = moved or await self.run(name, invocation.payload, self._deadlines.for_command())
        outcome = "ok" if 200 <= status < 300 else "timeout" if status == 504 else "error"
        self._metrics.commands.labels(outcome=outcome).observe(time.monotonic() - started)
        return status, payload

    async def _moved(self, name: str) -> tuple[int, Any] | None:
        """The answer for a command that reached this node's hub session after another node claimed the
        device: as for an offline device, not run (`owned_elsewhere`)."""
        if not await owned_elsewhere(self._owns, self._log, f"command {name}", "run"):
            return None
        offline = NotRegisteredError(self._device.endpoint, "owned by another node now, not online here")
        return int(method_status(offline)), {"error": str(offline)}

    async def run(self, name: str, payload: Any, deadline: float) -> tuple[int, Any]:
        mapper = self._device.mapper
        if mapper is None:
            return 404, {"error": f"this device has no commands ({name})"}
        try:
            call = mapper.command(name, payload)
        except CommandError as error:
            return error.status, {"error": str(error)}
        operation = call.operation
        devices, endpoint = self._downlinks, self._device.endpoint
        try:
            wait = self._deadlines.within(deadline)
            if operation.operation is Operation.EXECUTE:
                await devices.execute(endpoint, operation.path, operation.arguments, deadline=wait)
                result = call.succeeded()
            elif operation.operation is Operation.READ:
                result = call.succeeded(await devices.read(endpoint, operation.path, deadline=wait))
            else:
                await devices.write(endpoint, operation.path, operation.records, deadline=wait)
                result = call.succeeded()
        except DownlinkError as error:
            result = call.failed(method_status(error), str(error))
        self._log.info("command %s answered %d", name, result.status)
        return int(result.status), result.payload

    def on_c2d(self, properties: PropertyBag, payload: bytes) -> None:
        """An offline command from IoT Central: kept in the store and run when the device can be reached."""
        name = properties.method_name
        if not name:
            self._log.warning("cloud-to-device message without method-name ignored")
            return
        try:
            request = json.loads(payload) if payload else None
        except ValueError:
            request = payload.decode(errors="replace")
        now = time.time()
        command = PendingCommand(
            properties.message_id or str(uuid.uuid4()),
            self._device.device_id,
            name,
            request,
            now + OFFLINE_COMMAND_TTL,
            now,
        )
        self._spawn(self._keep_and_run(command), f"offline-{name}")

    async def _keep_and_run(self, command: PendingCommand) -> None:
        await self._store.add_command(command)
        await self._run_offline(command)

    async def _run_offline(self, command: PendingCommand) -> None:
        if not await self._owns():
            self._log.info("offline command %s left to the device's new owner node", command.name)
            return
        remaining = command.deadline - time.time()
        if remaining > 0:
            deadline = self._deadlines.clock() + remaining
            status, _ = await self.run(command.name, command.payload, deadline)
            self._log.info("offline command %s finished with %d", command.name, status)
        else:
            self._log.warning("offline command %s expired before the device could take it", command.name)
        await self._store.remove_command(command.command_id)
