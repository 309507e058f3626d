"""The CoAP face: the LwM2M server (registration, queue mode, observe, Send, device management) and
plain CBOR ingest, on aiocoap with a hand-parsed hot path for telemetry.

    server = Lwm2mServer(CoapSettings(port=5683), sink)       # sink: a TelemetrySink
    async with server:
        await server.devices.observe("dev1", Path(3303, 0, 5700))
"""

# Lazy (PEP 562): importing a pure module such as `translator.coap.registration` runs this file first, and
# eager imports here would load aiocoap and asyncio with it. Each name is imported on first use instead.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from translator.coap.ingest import (
        decode_ingest,
        decode_send,
    )
    from translator.coap.management import (
        DeviceManager,
        ObservationHandle,
    )
    from translator.coap.registration import (
        RegisterParams,
        Registration,
        RegistrationStore,
        parse_query,
    )
    from translator.coap.server import (
        Lwm2mServer,
    )
    from translator.coap.settings import (
        CoapSettings,
    )
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

_EXPORTS = {
    "Admission": "identity",
    "BackPressure": "errors",
    "BadRequest": "errors",
    "BrokenPromiseError": "sink",
    "ClaimedEndpointResolver": "identity",
    "CoapFaceError": "errors",
    "CoapSettings": "settings",
    "Code": "errors",
    "DeadlineExpiredError": "errors",
    "Delivery": "sink",
    "DeregisterReason": "sink",
    "DeviceIdentity": "identity",
    "DeviceManager": "management",
    "DevicePayloadError": "errors",
    "DeviceResponseError": "errors",
    "DeviceTimeoutError": "errors",
    "DownlinkError": "errors",
    "Forbidden": "errors",
    "IdentityResolver": "identity",
    "Lwm2mServer": "server",
    "NamedRecord": "sink",
    "NotRegisteredError": "errors",
    "NullSink": "sink",
    "ObservationHandle": "management",
    "Outcome": "sink",
    "PayloadTooLarge": "errors",
    "RegisterParams": "registration",
    "Registration": "registration",
    "RegistrationEndedError": "errors",
    "RegistrationStore": "registration",
    "RequestRejected": "errors",
    "SecurityContext": "identity",
    "ServerRefusedError": "errors",
    "TelemetryRecord": "sink",
    "TelemetrySink": "sink",
    "TelemetrySource": "sink",
    "UnknownRegistration": "errors",
    "UnsupportedContentFormat": "errors",
    "UnsupportedVersion": "errors",
    "acknowledged": "sink",
    "answer_for": "errors",
    "decode_ingest": "ingest",
    "decode_send": "ingest",
    "device_id_for": "identity",
    "endpoint_for": "identity",
    "parse_query": "registration",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        # Also how `from translator.coap import wire` finds a submodule: the import system imports it then.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
