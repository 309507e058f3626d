"""What the hub sends one device's session: twin responses to the requests awaiting them, desired-property
patches, direct methods and cloud-to-device messages, each handed to the owner's callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from translator.iotc.client.commands import answer_method
from translator.iotc.client.session_types import SessionCallbacks, SessionClosedError
from translator.iotc.client.transport import MqttTransport, TransportClosedError
from translator.iotc.protocol.errors import IotcFormatError
from translator.iotc.protocol.topics import (
    CloudToDevice,
    DesiredPatch,
    MethodRequest,
    TwinResponse,
    parse_hub_topic,
)
from translator.iotc.protocol.twin import parse_desired_patch
from translator.iotc.protocol.twin_requests import TwinRequests
from translator.ops.logs import device_log

log = logging.getLogger(__name__)

TwinWaiter = asyncio.Future[tuple[TwinResponse, bytes]]


class Inbound:
    """Dispatches the session's incoming messages; `ready` gives the connected transport a method's answer
    goes out on, `spawn` runs a method as the session's task (cancelled when it closes)."""

    def __init__(
        self,
        device_id: str,
        callbacks: SessionCallbacks,
        twin_requests: TwinRequests[TwinWaiter],
        *,
        ready: Callable[[], Awaitable[MqttTransport]],
        spawn: Callable[[Awaitable[Any], str], None],
        method_timeout: float,
    ) -> None:
        self._device_id = device_id
        self._log = device_log(log, device_id)
        self._callbacks = callbacks
        self._twin_requests = twin_requests
        self._ready = ready
        self._spawn = spawn
        self._method_timeout = method_timeout

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Handle one message; False if its topic is not the hub's (nothing was done)."""
        try:
            parsed = parse_hub_topic(topic)
        except IotcFormatError:
            self._log.warning("ignoring message on unknown topic %r", topic)
            return False
        if isinstance(parsed, TwinResponse):
            waiter = self._twin_requests.match(parsed)
            if waiter is not None and not waiter.done():
                waiter.set_result((parsed, payload))
        elif isinstance(parsed, DesiredPatch):
            self._on_desired(payload)
        elif isinstance(parsed, MethodRequest):
            self._spawn(self._answer_method(parsed, payload), f"method-{parsed.name}")
        elif isinstance(parsed, CloudToDevice):
            if self._callbacks.on_c2d is None:
                self._log.warning("cloud-to-device message dropped: no handler")
            else:
                self._callbacks.on_c2d(parsed.properties, payload)
        else:
            self._log.warning("unexpected %s", type(parsed).__name__)
        return True

    def _on_desired(self, payload: bytes) -> None:
        try:
            properties = parse_desired_patch(payload)
        except IotcFormatError as error:
            self._log.warning("bad desired patch: %s", error)
            return
        if self._callbacks.on_desired is None:
            self._log.warning("desired patch ignored: no handler")
            return
        self._callbacks.on_desired(properties)

    async def _answer_method(self, request: MethodRequest, payload: bytes) -> None:
        timeout, handler = self._method_timeout, self._callbacks.on_method
        topic, body = await answer_method(self._device_id, handler, request, payload, timeout)
        try:
            transport = await asyncio.wait_for(self._ready(), timeout)
            await transport.publish(topic, body, 0)
        except (TransportClosedError, TimeoutError, SessionClosedError) as error:
            self._log.warning("method %s response lost: %s", request.name, error)
