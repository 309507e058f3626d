"""The Device Provisioning Service over MQTT, as IoT Central's DPS answers a device."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from emulator import approval, relationships
from emulator import mqtt_codec as mqtt
from emulator.activity import Activity
from emulator.config import EmulatorConfig
from emulator.connection import ClientConnection, ProtocolViolation
from emulator.faults import Faults
from emulator.ids import valid_common_name, valid_registration_id
from emulator.limits import ServiceLimits
from emulator.sas import SasError, derive_device_key, parse_sas, verify_sas
from emulator.state import Application, Device, utc_now_iso
from emulator.topics import (
    DPS_POLL_PREFIX,
    DPS_REGISTER_PREFIX,
    DPS_RESPONSE_FILTER,
    topic_query,
)

log = logging.getLogger("emulator.dps")


@dataclass(slots=True)
class Operation:
    operation_id: str
    registration_id: str
    payload: Any
    ready_at: float
    created: str


def parse_dps_username(username: str) -> tuple[str, str] | None:
    """(id scope, registration id) from `{idScope}/registrations/{registrationId}/api-version=...`."""
    parts = username.split("/", 3)
    if len(parts) != 4 or parts[1] != "registrations" or not parts[3].startswith("api-version="):
        return None
    return parts[0], parts[2]


class DpsService:
    def __init__(
        self,
        application: Application,
        config: EmulatorConfig,
        faults: Faults,
        *,
        on_change: Callable[[], None],
        assign_template: Callable[[Device, str], None] = lambda device, model_id: None,
        clock: Callable[[], float] = time.time,
        limits: ServiceLimits | None = None,
        activity: Activity | None = None,
    ) -> None:
        self.activity = activity or Activity()
        self._application = application
        self._config = config
        self._faults = faults
        self._on_change = on_change
        self._assign_template = assign_template
        self._clock = clock
        self._operations: dict[str, Operation] = {}
        self.auto_approve = config.auto_approve  # IoT Central's setting; the REST API may change it
        self.attempts: Counter[str] = Counter()  # register requests per registration id
        self.limits = limits or ServiceLimits(config.limit_settings(), time.monotonic)

    def open_session(
        self, connection: ClientConnection, connect: mqtt.Connect, scope: str, registration_id: str
    ) -> DpsSession | int:
        if connect.client_id != registration_id:
            log.warning("dps %s: client id %r is not the registration id", registration_id, connect.client_id)
            return mqtt.CONNACK_IDENTIFIER_REJECTED
        if scope != self._application.id_scope:
            log.warning("dps %s: unknown ID scope %r", registration_id, scope)
            return mqtt.CONNACK_NOT_AUTHORIZED
        # Credentials are checked per registration request, which answers 401 with errorCode 401002.
        return DpsSession(self, connection, registration_id, connect.password)

    # -- the operations a session asks for ------------------------------------------------------------

    def authenticate(self, registration_id: str, password: str | None, certificate_cn: str | None) -> str:
        """'' when the device may register, else the reason it may not."""
        if certificate_cn is not None and password is None:
            if not valid_common_name(certificate_cn):
                return f"certificate CN {certificate_cn!r} is longer than 64 characters, which X.509 forbids"
            if certificate_cn == registration_id:
                return ""
            return f"certificate CN {certificate_cn!r} is not the registration id"
        if password is None:
            return "no SAS token and no enrollment certificate"
        if password in self._faults.revoked_tokens:
            return "token expired (fault injection)"
        try:
            token = parse_sas(password)
            keys = [
                derive_device_key(group_key, registration_id)
                for group_key in (self._application.group_primary_key, self._application.group_secondary_key)
                if group_key
            ]
            verify_sas(
                token,
                expected_resource=f"{self._application.id_scope}/registrations/{registration_id}",
                keys=keys,
                now=self._clock(),
                expected_key_name="registration",
            )
        except SasError as error:
            return str(error)
        return ""

    def start(self, registration_id: str, payload: Any) -> Operation:
        self.activity.of(registration_id).dps_registrations += 1
        operation = Operation(
            operation_id=f"4.{secrets.token_hex(8)}.{uuid.uuid4()}",
            registration_id=registration_id,
            payload=payload,
            ready_at=self._clock() + self._config.dps_assign_delay,
            created=utc_now_iso(),
        )
        self._operations[operation.operation_id] = operation
        return operation

    def operation(self, operation_id: str) -> Operation | None:
        return self._operations.get(operation_id)

    def refusal(self, registration_id: str) -> str:
        """Why an authenticated device may not register ('' when it may): blocked, or waiting for approval."""
        device_known = self._application.device(registration_id) is not None
        reason = approval.refusal(self._application, registration_id, auto_approve=self.auto_approve)
        if not device_known:
            self._on_change()  # its record was created (approved, or waiting for an operator)
        return reason

    def assign(self, operation: Operation, attestation: str) -> dict[str, Any]:
        """Complete an operation: auto-register the device (IoT Central's auto-approve) and pick its hub."""
        self._operations.pop(operation.operation_id, None)
        device = self._application.ensure_device(operation.registration_id)
        hubs = self._config.hub_names
        if device.assigned_hub not in hubs:
            index = int.from_bytes(hashlib.sha256(device.device_id.encode()).digest()[:4], "big")
            device.assigned_hub = hubs[index % len(hubs)]
            substatus = "initialAssignment"
        else:
            substatus = "reprovisionedToInitialAssignment" if device.provisioned else "initialAssignment"
        payload = operation.payload
        if isinstance(payload, dict) and isinstance(payload.get("modelId"), str) and payload["modelId"]:
            device.model_id = payload["modelId"]
            # The first registration with a model id is the device's first connection: IoT Central
            # assigns the template of that id now, or leaves the device Unassigned.
            self._assign_template(device, device.model_id)
        gateway_id = relationships.gateway_of(payload)
        if gateway_id not in (None, device.device_id) and relationships.attach(
            self._application.relationships, str(gateway_id), device.device_id
        ):
            log.info("dps %s: downstream of gateway %s", device.device_id, gateway_id)
        device.provisioned = True
        device.attestation = attestation
        device.last_provisioned = utc_now_iso()
        self._on_change()
        log.info("dps %s: assigned to %s (model %s)", device.device_id, device.assigned_hub, device.model_id)
        x509: dict[str, Any] = {"x509": {}} if attestation == "x509" else {}
        return {
            "operationId": operation.operation_id,
            "status": "assigned",
            "registrationState": {
                **x509,
                "registrationId": operation.registration_id,
                "createdDateTimeUtc": operation.created,
                "assignedHub": device.assigned_hub,
                "deviceId": device.device_id,
                "status": "assigned",
                "substatus": substatus,
                "lastUpdatedDateTimeUtc": device.last_provisioned,
                "etag": f'"{secrets.token_hex(8)}"',
            },
        }

    def throttled_for(self) -> float:
        """Seconds a registration must wait: a throttling fault, or the registrations-per-minute quota."""
        return self._faults.dps_throttled(self._clock()) or self.limits.dps_registration()

    def now(self) -> float:
        return self._clock()

    @property
    def retry_after(self) -> int:
        return self._config.dps_retry_after


def _error(status: int, code: int, message: str) -> bytes:
    return json.dumps(
        {
            "errorCode": code,
            "trackingId": str(uuid.uuid4()),
            "message": message,
            "timestampUtc": utc_now_iso(),
        }
    ).encode()


class DpsSession:
    name = "dps"

    def __init__(
        self, service: DpsService, connection: ClientConnection, registration_id: str, password: str | None
    ) -> None:
        self._service = service
        self._connection = connection
        self._registration_id = registration_id
        self._password = password

    def accepts_filter(self, topic_filter: str) -> bool:
        return topic_filter == DPS_RESPONSE_FILTER

    def on_subscribed(self, topic_filters: list[str]) -> None:
        pass

    def on_accepted(self) -> None:
        pass

    def on_puback(self, packet_id: int) -> None:
        pass

    def ack_delay(self, publish: mqtt.Publish) -> float:
        return 0.0

    def on_closed(self, reason: str) -> None:
        pass

    def _respond(self, status: int, rid: str, body: bytes, retry_after: int | None = None) -> None:
        topic = f"$dps/registrations/res/{status}/?$rid={rid}"
        if retry_after is not None:
            topic += f"&retry-after={retry_after}"
        if not self._connection.publish(topic, body, qos=0):
            log.warning("dps %s: response %d dropped: not subscribed", self._registration_id, status)

    def on_publish(self, publish: mqtt.Publish) -> None:
        query = topic_query(publish.topic)
        rid = query.get("$rid", "")
        if publish.topic.startswith(DPS_REGISTER_PREFIX):
            self._register(rid, publish.payload)
        elif publish.topic.startswith(DPS_POLL_PREFIX):
            self._poll(rid, query.get("operationId", ""))
        else:
            raise ProtocolViolation(f"publish to {publish.topic!r}, which DPS does not accept")

    def _register(self, rid: str, body: bytes) -> None:
        service = self._service
        registration_id = self._registration_id
        service.attempts[registration_id] += 1
        throttled = service.throttled_for()
        if throttled:
            retry_after = max(1, math.ceil(throttled))
            log.info("dps %s: throttled (429), retry after %d s", registration_id, retry_after)
            self._respond(429, rid, _error(429, 429001, "Operations are being throttled."), retry_after)
            return
        if not valid_registration_id(registration_id):
            log.warning("dps %r: not a valid registration id", registration_id)
            self._respond(400, rid, _error(400, 400004, f"Invalid registration id {registration_id!r}"))
            return
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as error:
            log.warning("dps %s: bad registration body: %s", registration_id, error)
            self._respond(400, rid, _error(400, 400004, f"Bad request body: {error}"))
            return
        if request.get("registrationId", registration_id) != registration_id:
            self._respond(400, rid, _error(400, 400004, "registrationId does not match the connection"))
            return
        reason = service.authenticate(registration_id, self._password, self._connection.certificate_cn)
        if reason:
            log.warning("dps %s: unauthorized: %s", registration_id, reason)
            self._respond(401, rid, _error(401, 401002, f"Unauthorized: {reason}"))
            return
        refused = service.refusal(registration_id)
        if refused:
            log.warning("dps %s: refused: %s", registration_id, refused)
            status, code = approval.REFUSED_STATUS, approval.REFUSED_CODE
            self._respond(status, rid, _error(status, code, refused))
            return
        operation = service.start(registration_id, request.get("payload"))
        log.info("dps %s: registration started, operation %s", registration_id, operation.operation_id)
        body_out = json.dumps({"operationId": operation.operation_id, "status": "assigning"}).encode()
        self._respond(202, rid, body_out, service.retry_after)

    def _poll(self, rid: str, operation_id: str) -> None:
        service = self._service
        operation = service.operation(operation_id)
        if operation is None or operation.registration_id != self._registration_id:
            self._respond(404, rid, _error(404, 404006, f"Operation {operation_id!r} not found"))
            return
        if service.now() < operation.ready_at:
            state = {"registrationId": operation.registration_id, "status": "assigning"}
            body = json.dumps(
                {"operationId": operation.operation_id, "status": "assigning", "registrationState": state}
            ).encode()
            self._respond(202, rid, body, service.retry_after)
            return
        attestation = "x509" if self._password is None else "symmetricKey"
        self._respond(200, rid, json.dumps(service.assign(operation, attestation)).encode())
