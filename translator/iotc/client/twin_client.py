"""One device's twin over its session: the request/response exchanges (a GET of the whole twin, a PATCH of
the reported section) matched by request id, retried across reconnects and 429s within their timeout, and
the reported section as last seen, so a patch IoT Hub would refuse for size is not sent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from translator.iotc.client.inbound import TwinWaiter
from translator.iotc.client.pacer import DevicePacing
from translator.iotc.client.session_types import SessionMetrics
from translator.iotc.client.transport import MqttTransport, TransportClosedError
from translator.iotc.protocol.errors import ConnectionLostError, hub_error_for_status
from translator.iotc.protocol.reconnect import ReconnectPolicy
from translator.iotc.protocol.reported_limits import merge_patch, within_limits
from translator.iotc.protocol.topics import ReportedPatch, TwinGet, TwinResponse
from translator.iotc.protocol.twin import Twin
from translator.iotc.protocol.twin_requests import TwinRequests
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class TwinClient:
    def __init__(
        self,
        device_id: str,
        requests: TwinRequests[TwinWaiter],
        *,
        ready: Callable[[], Awaitable[MqttTransport]],
        pacing: DevicePacing,
        policy: ReconnectPolicy,
        metrics: SessionMetrics,
    ) -> None:
        self._log = device_log(log, device_id)
        self._requests = requests
        self._ready = ready
        self._pacing = pacing
        self._policy = policy
        self._metrics = metrics
        self._reported: Mapping[str, Any] = {}  # the reported section as last seen, with patches since

    async def _request(
        self, topic_for: Callable[[str], str], payload: bytes, timeout: float, *, update: bool = False
    ) -> tuple[TwinResponse, bytes]:
        async with asyncio.timeout(timeout):
            while True:
                if update:
                    await self._pacing.twin_update()
                transport = await self._ready()
                waiter: TwinWaiter = asyncio.get_running_loop().create_future()
                rid = self._requests.open(waiter)
                try:
                    await transport.publish(topic_for(rid), payload, 0)
                    response, body = await waiter
                except (TransportClosedError, ConnectionLostError):
                    continue
                finally:
                    self._requests.close(rid)
                if response.status == 429:
                    self._pacing.twin_throttled(response.retry_after)
                    await asyncio.sleep(self._policy.retry_after_twin_throttle(response.retry_after))
                    continue
                if not response.ok:
                    raise hub_error_for_status(
                        response.status, retry_after=response.retry_after, what="twin request"
                    )
                return response, body

    async def get(self, timeout: float) -> Twin:
        _, body = await self._request(lambda rid: TwinGet(rid=rid).topic, b"", timeout)
        twin = Twin.from_json(body)
        self._reported = twin.reported  # what the section's size is checked against before a patch
        return twin

    async def patch_reported(self, patch: Mapping[str, Any], timeout: float) -> int | None:
        kept, refused = within_limits(patch, self._reported)
        for reason in refused:
            self._log.warning("session: reported properties not sent: %s", reason)
            self._metrics.failed("reported_too_large")
        if not kept:
            return None
        body = json.dumps(kept, separators=(",", ":")).encode()
        response, _ = await self._request(
            lambda rid: ReportedPatch(rid=rid).topic, body, timeout, update=True
        )
        self._reported = merge_patch(self._reported, kept)
        return response.version
