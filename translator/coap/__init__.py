"""The CoAP face: the LwM2M server (registration, queue mode, observe, Send, device management) and
plain CBOR ingest, on aiocoap with a hand-parsed hot path for telemetry.

    server = Lwm2mServer(CoapSettings(port=5683), sink)       # sink: a TelemetrySink
    async with server:
        await server.devices.observe("dev1", Path(3303, 0, 5700))
"""

from translator.coap.errors import (
    BackPressure,
    BadRequest,
    CoapFaceError,
    Code,
    DeadlineExpiredError,
    DevicePayloadError,
    DeviceResponseError,
    DeviceTimeoutError,
    DownlinkError,
    Forbidden,
    NotRegisteredError,
    PayloadTooLarge,
    RegistrationEndedError,
    RequestRejected,
    ServerRefusedError,
    UnknownRegistration,
    UnsupportedContentFormat,
    UnsupportedVersion,
    answer_for,
)
from translator.coap.identity import (
    Admission,
    ClaimedEndpointResolver,
    DeviceIdentity,
    IdentityResolver,
    SecurityContext,
    device_id_for,
    endpoint_for,
)
from translator.coap.ingest import decode_ingest, decode_send
from translator.coap.management import DeviceManager, ObservationHandle
from translator.coap.registration import RegisterParams, Registration, RegistrationStore, parse_query
from translator.coap.server import Lwm2mServer
from translator.coap.settings import CoapSettings
from translator.coap.sink import (
    BrokenPromiseError,
    Delivery,
    DeregisterReason,
    NamedRecord,
    NullSink,
    Outcome,
    TelemetryRecord,
    TelemetrySink,
    TelemetrySource,
    acknowledged,
)

__all__ = [
    "Admission",
    "BackPressure",
    "BadRequest",
    "BrokenPromiseError",
    "ClaimedEndpointResolver",
    "CoapFaceError",
    "CoapSettings",
    "Code",
    "DeadlineExpiredError",
    "Delivery",
    "DeregisterReason",
    "DeviceIdentity",
    "DeviceManager",
    "DevicePayloadError",
    "DeviceResponseError",
    "DeviceTimeoutError",
    "DownlinkError",
    "Forbidden",
    "IdentityResolver",
    "Lwm2mServer",
    "NamedRecord",
    "NotRegisteredError",
    "NullSink",
    "ObservationHandle",
    "Outcome",
    "PayloadTooLarge",
    "RegisterParams",
    "Registration",
    "RegistrationEndedError",
    "RegistrationStore",
    "RequestRejected",
    "SecurityContext",
    "ServerRefusedError",
    "TelemetryRecord",
    "TelemetrySink",
    "TelemetrySource",
    "UnknownRegistration",
    "UnsupportedContentFormat",
    "UnsupportedVersion",
    "acknowledged",
    "answer_for",
    "decode_ingest",
    "decode_send",
    "device_id_for",
    "endpoint_for",
    "parse_query",
]
