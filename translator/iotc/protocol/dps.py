"""A sans-I/O DPS registration over MQTT (DPS §1).

The machine never touches a socket or a clock. Its driver:

    reg = DpsRegistration(registration_id, model_id=..., backoff=Backoff(...))
    subscribe(reg.subscription)            # before anything is published
    publish(reg.start())                   # the register request
    for topic, payload in incoming:
        event = reg.receive(topic, payload)    # may raise a ProvisioningError
        if isinstance(event, Assigned): break
        if isinstance(event, Wait):
            sleep(event.delay); publish(reg.next_publish())

Polls honour DPS's retry-after; 429 and 5xx are retried after max(retry-after, a full-jitter
backoff draw) until `max_retries` runs out, then raise.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from translator.iotc.protocol.backoff import Backoff
from translator.iotc.protocol.errors import (
    DeviceBlockedError,
    ProvisioningError,
    ProvisioningFailedError,
    ProvisioningProtocolError,
    ProvisioningThrottledError,
    ProvisioningUnauthorizedError,
    TopicError,
)
from translator.iotc.protocol.topics import (
    DPS_RESPONSE_SUBSCRIPTION,
    DpsOperationStatus,
    DpsRegister,
    DpsResponse,
    parse_dps_topic,
)

DEVICE_BLOCKED_CODE = 400209
# DPS's own SDKs poll every 2 s when the response carries no retry-after.
DEFAULT_POLL_INTERVAL = 2.0


@dataclass(frozen=True, slots=True)
class Publish:
    """A message the driver must publish (QoS 1)."""

    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait `delay` seconds, then publish `next_publish()`. `reason`: `assigning` or `throttled`/`retry`."""

    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Assigned:
    """The device is assigned: connect to `assigned_hub` as `device_id`."""

    assigned_hub: str
    device_id: str
    substatus: str | None = None
    payload: Any = None
    # The gateway this registration named in its payload (iotcGateway), so that a cached assignment made
    # before the translator became a gateway is known to lack the relation.
    gateway_id: str | None = None


Event = Wait | Assigned


class DpsState(Enum):
    IDLE = "idle"
    AWAITING_RESPONSE = "awaiting response"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    FAILED = "failed"


def _counter_rids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: str(next(counter))


class DpsRegistration:
    """One registration attempt for one device; create a new one to register again."""

    subscription = DPS_RESPONSE_SUBSCRIPTION

    def __init__(
        self,
        registration_id: str,
        *,
        backoff: Backoff,
        model_id: str | None = None,
        gateway_id: str | None = None,
        max_retries: int = 5,
        default_poll_interval: float = DEFAULT_POLL_INTERVAL,
        rid_factory: Callable[[], str] | None = None,
    ) -> None:
        if not registration_id:
            raise ValueError("registration id must not be empty")
        self.registration_id = registration_id
        self.model_id = model_id
        self.gateway_id = gateway_id
        self._backoff = backoff
        self._max_retries = max_retries
        self._default_poll = default_poll_interval
        self._new_rid = rid_factory or _counter_rids()
        self._state = DpsState.IDLE
        self._rid: str | None = None
        self._operation_id: str | None = None
        self._retries = 0
        self._assignment: Assigned | None = None

    @property
    def state(self) -> DpsState:
        return self._state

    @property
    def operation_id(self) -> str | None:
        return self._operation_id

    @property
    def assignment(self) -> Assigned | None:
        return self._assignment

    def register_body(self) -> bytes:
        """The register request. With a gateway, the payload names it: "the gateway ID lets IoT Central
        establish the relationship between the downstream device and its gateway" — `{"modelId": …,
        "iotcGateway": {"iotcGatewayId": …}}` (https://learn.microsoft.com/azure/iot-central/core/
        tutorial-define-gateway-device-type#connect-real-downstream-devices)."""
        body: dict[str, Any] = {"registrationId": self.registration_id}
        payload: dict[str, Any] = {}
        if self.model_id is not None:
            payload["modelId"] = self.model_id
        if self.gateway_id is not None:
            payload["iotcGateway"] = {"iotcGatewayId": self.gateway_id}
        if payload:
            body["payload"] = payload
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    def start(self) -> Publish:
        """The first publish: the register request."""
        if self._state is not DpsState.IDLE:
            raise RuntimeError(f"registration already started ({self._state.value})")
        return self._send()

    def next_publish(self) -> Publish:
        """After a `Wait`: the poll (or, before DPS gave an operation id, the register again)."""
        if self._state is not DpsState.WAITING:
            raise RuntimeError(f"nothing to publish in state {self._state.value}")
        return self._send()

    def _send(self) -> Publish:
        self._rid = self._new_rid()
        self._state = DpsState.AWAITING_RESPONSE
        if self._operation_id is None:
            return Publish(DpsRegister(rid=self._rid).topic, self.register_body())
        return Publish(DpsOperationStatus(rid=self._rid, operation_id=self._operation_id).topic, b"")

    def receive(self, topic: str, payload: bytes) -> Event | None:
        """Consume one incoming message; None when it is not the answer we wait for."""
        try:
            response = parse_dps_topic(topic)
        except TopicError:
            return None
        if (
            not isinstance(response, DpsResponse)
            or self._state is not DpsState.AWAITING_RESPONSE
            or response.rid != self._rid
        ):
            return None
        try:
            return self._handle(response, payload)
        except ProvisioningError:
            self._state = DpsState.FAILED
            raise

    def _handle(self, response: DpsResponse, payload: bytes) -> Event:
        body = _json_body(payload, response.status)
        status = response.status
        if status == 202:
            return self._assigning(body, response.retry_after)
        if status == 200:
            return self._finished(body, response.retry_after)
        error_code, tracking_id, message = _error_fields(body)
        if error_code == DEVICE_BLOCKED_CODE:
            raise DeviceBlockedError(
                message or "device blocked or not associated in IoT Central",
                status=status,
                error_code=error_code,
                tracking_id=tracking_id,
            )
        if status == 401 or (error_code is not None and error_code // 1000 == 401):
            raise ProvisioningUnauthorizedError(
                message or "DPS refused the credentials",
                status=status,
                error_code=error_code,
                tracking_id=tracking_id,
            )
        if status == 429 or status >= 500:
            return self._retry(status, error_code, tracking_id, message, response.retry_after)
        raise ProvisioningError(
            message or f"DPS answered {status}", status=status, error_code=error_code, tracking_id=tracking_id
        )

    def _assigning(self, body: dict[str, Any], retry_after: float | None) -> Wait:
        operation_id = body.get("operationId")
        if isinstance(operation_id, str) and operation_id:
            self._operation_id = operation_id
        elif self._operation_id is None:
            raise ProvisioningProtocolError("202 without an operationId", status=202)
        self._state = DpsState.WAITING
        return Wait(delay=self._default_poll if retry_after is None else retry_after, reason="assigning")

    def _finished(self, body: dict[str, Any], retry_after: float | None) -> Event:
        status = body.get("status")
        state = body.get("registrationState")
        state = state if isinstance(state, dict) else {}
        if status == "assigning":
            # Some DPS versions answer a poll with 200 while still assigning.
            return self._assigning(body, retry_after)
        substatus = state.get("substatus")
        substatus = substatus if isinstance(substatus, str) else None
        if status == "assigned":
            hub, device_id = state.get("assignedHub"), state.get("deviceId")
            if not isinstance(hub, str) or not hub or not isinstance(device_id, str) or not device_id:
                raise ProvisioningProtocolError("assigned without assignedHub/deviceId", status=200)
            self._assignment = Assigned(hub, device_id, substatus, state.get("payload"), self.gateway_id)
            self._state = DpsState.ASSIGNED
            self._backoff.reset()
            return self._assignment
        code = state.get("errorCode")
        error_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        message = state.get("errorMessage")
        if error_code == DEVICE_BLOCKED_CODE:
            raise DeviceBlockedError(
                message if isinstance(message, str) else "device blocked or not associated in IoT Central",
                status=200,
                error_code=error_code,
            )
        raise ProvisioningFailedError(
            message if isinstance(message, str) else f"registration ended with status {status!r}",
            registration_status=str(status),
            substatus=substatus,
            error_code=error_code,
        )

    def _retry(
        self,
        status: int,
        error_code: int | None,
        tracking_id: str | None,
        message: str | None,
        retry_after: float | None,
    ) -> Wait:
        if self._retries >= self._max_retries:
            if status == 429:
                raise ProvisioningThrottledError(
                    message or "DPS kept throttling",
                    retry_after=retry_after,
                    error_code=error_code,
                    tracking_id=tracking_id,
                )
            raise ProvisioningError(
                message or f"DPS kept failing with {status}",
                status=status,
                error_code=error_code,
                tracking_id=tracking_id,
            )
        self._retries += 1
        self._state = DpsState.WAITING
        delay = self._backoff.next_delay(at_least=retry_after or 0.0)
        return Wait(delay=delay, reason="throttled" if status == 429 else "retry")


def _json_body(payload: bytes, status: int) -> dict[str, Any]:
    if not payload.strip():
        return {}
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProvisioningProtocolError("DPS response is not JSON", status=status) from exc
    if not isinstance(body, dict):
        raise ProvisioningProtocolError("DPS response is not a JSON object", status=status)
    return body


def _error_fields(body: dict[str, Any]) -> tuple[int | None, str | None, str | None]:
    code, tracking, message = body.get("errorCode"), body.get("trackingId"), body.get("message")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        tracking if isinstance(tracking, str) else None,
        message if isinstance(message, str) else None,
    )
