"""The codec layer: LwM2M objects ⇄ an IoT Central device template (DTDL v2). Pure, no I/O but reading
a codec file.

- `load_codec(path, registry)` / `parse_codec(text, registry)`: a TOML codec file → `Codec`.
- `default_codec(instances, registry, versions=, overrides=)`: the codec for objects without a file.
- `export_template(codec)`: the DTDL v2 interfaces IoT Central imports as a device model;
  `device_template(codec, queue_mode=)`: the device template JSON its REST API publishes.
- `DeviceMapper(codec, device_id=)`: records → telemetry and reported properties; desired properties →
  LwM2M writes and acknowledgements; methods → LwM2M operations and method responses.

Errors: `CodecError` and its subclasses only.
"""

from translator.codec.check import check_codec
from translator.codec.default import DEFAULT_SOURCE, Kind, default_codec, default_kind
from translator.codec.errors import (
    BadCommandRequest,
    CodecError,
    CodecFileError,
    CommandError,
    UnknownCommand,
    ValueRejected,
)
from translator.codec.export import device_template, export_template
from translator.codec.loader import load_codec, parse_codec
from translator.codec.mapper import (
    CommandCall,
    DesiredPlan,
    DeviceMapper,
    Lwm2mOperation,
    Lwm2mWrite,
    MethodResult,
    PendingWrite,
    TelemetryMessage,
    Uplink,
    ack_code_for,
)
from translator.codec.names import is_dtdl_name
from translator.codec.spec import (
    Argument,
    Codec,
    Command,
    Component,
    Observation,
    ObserveAttributes,
    Operation,
    PathPattern,
    Property,
    ReadField,
    SemanticUnit,
    Telemetry,
)

__all__ = [
    "DEFAULT_SOURCE",
    "Argument",
    "BadCommandRequest",
    "Codec",
    "CodecError",
    "CodecFileError",
    "Command",
    "CommandCall",
    "CommandError",
    "Component",
    "DesiredPlan",
    "DeviceMapper",
    "Kind",
    "Lwm2mOperation",
    "Lwm2mWrite",
    "MethodResult",
    "Observation",
    "ObserveAttributes",
    "Operation",
    "PathPattern",
    "PendingWrite",
    "Property",
    "ReadField",
    "SemanticUnit",
    "Telemetry",
    "TelemetryMessage",
    "UnknownCommand",
    "Uplink",
    "ValueRejected",
    "ack_code_for",
    "check_codec",
    "default_codec",
    "default_kind",
    "device_template",
    "export_template",
    "is_dtdl_name",
    "load_codec",
    "parse_codec",
]
