"""A direct method (an IoT Central command) run by the session's owner, answered honestly whatever happens.

"Direct methods are synchronous and either succeed or fail after the timeout period (default: 30 seconds)"
(https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods), and the status of the answer is
the device's to choose. So a handler that takes longer than `SessionSettings.method_timeout` is answered 504,
one that raises 500 with the error, a request that cannot be decoded 400, a method nobody handles 404.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from translator.iotc.client.session_types import MethodHandler
from translator.iotc.protocol.errors import IotcFormatError
from translator.iotc.protocol.methods import Invocation, MethodStatus, method_response
from translator.iotc.protocol.topics import MethodRequest
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


async def answer_method(
    device_id: str, handler: MethodHandler | None, request: MethodRequest, payload: bytes, timeout: float
) -> tuple[str, bytes]:
    """The response topic and body for a method request."""
    try:
        invocation = Invocation.from_message(request, payload)
    except IotcFormatError as error:
        status, result = int(MethodStatus.BAD_REQUEST), {"error": str(error)}
    else:
        status, result = await run_method(device_id, handler, invocation, timeout)
    return method_response(request.rid, status, result)


async def run_method(
    device_id: str, handler: MethodHandler | None, invocation: Invocation, timeout: float
) -> tuple[int, Any]:
    if handler is None:
        return int(MethodStatus.NOT_FOUND), {"error": f"no command {invocation.method}"}
    try:
        async with asyncio.timeout(timeout):
            return await handler(invocation)
    except TimeoutError:
        return int(MethodStatus.TIMEOUT), {"error": "the device did not answer in time"}
    except Exception as error:  # a handler bug must still answer the cloud, honestly
        device_log(log, device_id).exception("method %s failed", invocation.method)
        return int(MethodStatus.ERROR), {"error": f"{type(error).__name__}: {error}"}
