"""Content formats: decode any LwM2M payload to `Record`s and encode `Record`s back.

    records = decode(ContentFormat.SENML_CBOR, payload, base_path=Path.parse("/3303/0"), registry=reg)
    payload = encode(ContentFormat.TLV, records, base_path=Path.parse("/3/0"), registry=reg)

Every failure is a `Lwm2mFormatError` whose `kind` suggests the CoAP answer: 4.15 for a content format
this module does not know, 4.06 when records cannot be represented in the requested format, 4.00 for a
malformed payload or value — including a well-formed value that cannot go on (NaN, an infinity, a time
outside 1970..9999: `UnrepresentableValue`, see `translator.lwm2m.representable`).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from types import MappingProxyType

import cbor2

from translator.lwm2m.errors import ErrorKind, Lwm2mFormatError
from translator.lwm2m.formats import (
    cbor,
    lwm2m_cbor,
    lwm2m_json,
    opaque,
    senml_cbor,
    senml_json,
    text,
    tlv,
)
from translator.lwm2m.paths import ROOT, Path
from translator.lwm2m.records import Record
from translator.lwm2m.registry import ResourceLookup
from translator.lwm2m.representable import check_records

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "SINGLE_VALUE_FORMATS",
    "SUPPORTED_FORMATS",
    "ContentFormat",
    "decode",
    "encode",
]


class ContentFormat(enum.IntEnum):
    TEXT = 0
    LINK_FORMAT = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    # Numbers LwM2M 1.0 clients used before IANA registration (Wakaama still accepts them).
    LEGACY_TLV = 1542
    LEGACY_JSON = 1543


Decoder = Callable[[bytes, Path, ResourceLookup | None, float | None], list[Record]]
Encoder = Callable[[Sequence[Record], Path | None, ResourceLookup | None], bytes]

_CODECS: MappingProxyType[int, tuple[Decoder, Encoder]] = MappingProxyType(
    {
        ContentFormat.TEXT: (text.decode, text.encode),
        ContentFormat.OPAQUE: (opaque.decode, opaque.encode),
        ContentFormat.CBOR: (cbor.decode, cbor.encode),
        ContentFormat.SENML_JSON: (senml_json.decode, senml_json.encode),
        ContentFormat.SENML_CBOR: (senml_cbor.decode, senml_cbor.encode),
        ContentFormat.TLV: (tlv.decode, tlv.encode),
        ContentFormat.LWM2M_JSON: (lwm2m_json.decode, lwm2m_json.encode),
        ContentFormat.LWM2M_CBOR: (lwm2m_cbor.decode, lwm2m_cbor.encode),
        ContentFormat.LEGACY_TLV: (tlv.decode, tlv.encode),
        ContentFormat.LEGACY_JSON: (lwm2m_json.decode, lwm2m_json.encode),
    }
)

SUPPORTED_FORMATS: frozenset[int] = frozenset(_CODECS)
SINGLE_VALUE_FORMATS: frozenset[int] = frozenset(
    {ContentFormat.TEXT, ContentFormat.OPAQUE, ContentFormat.CBOR}
)
# A CoAP payload (even block-wise reassembled) has no business being larger; bounds decoder memory.
DEFAULT_MAX_PAYLOAD = 1024 * 1024

# What a decoder's internals may raise on hostile input, turned into the typed error at this boundary.
_INPUT_ERRORS = (
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    RecursionError,
    struct.error,
    cbor2.CBORError,
)


def _codec(content_format: int) -> tuple[Decoder, Encoder]:
    try:
        return _CODECS[content_format]
    except KeyError:
        raise Lwm2mFormatError(
            f"content format {content_format} is not supported", ErrorKind.UNSUPPORTED_CONTENT_FORMAT
        ) from None


def decode(
    content_format: int,
    payload: bytes,
    *,
    base_path: Path = ROOT,
    registry: ResourceLookup | None = None,
    now: float | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> list[Record]:
    """Decode a payload into records, in payload order.

    `base_path` is the request path the payload answers (or is written to): TLV and the single-value
    formats need it to name their values. `registry` types values by resource model (text and TLV are
    untyped without it: str and bytes). `now` (Unix seconds) resolves relative SenML/JSON times; the
    clock is read only when such a time occurs and `now` is None.
    """
    decoder = _codec(content_format)[0]
    if len(payload) > max_payload:
        raise Lwm2mFormatError(f"payload of {len(payload)} bytes exceeds {max_payload}")
    if type(payload) is not bytes:
        payload = bytes(payload)  # bytearray/memoryview: the decoders slice and .decode() bytes
    try:
        records = decoder(payload, base_path, registry, now)
    except Lwm2mFormatError:
        raise
    except _INPUT_ERRORS as exc:
        raise Lwm2mFormatError(f"content format {content_format}: {type(exc).__name__}: {exc}") from None
    # The one place every decoded LwM2M value passes (Send, notifications, Read answers): see representable.
    check_records(records, ContentFormat(content_format).name)
    return records


def encode(
    content_format: int,
    records: Sequence[Record],
    *,
    base_path: Path | None = None,
    registry: ResourceLookup | None = None,
) -> bytes:
    """Encode records (resource or resource-instance values) as a payload.

    `base_path` is the request path (Write target, Read answered); when None it is the records' common
    prefix. Record times are written by SenML and LwM2M JSON only (as absolute times); other formats
    cannot carry them and drop them.
    """
    encoder = _codec(content_format)[1]
    try:
        return encoder(records, base_path, registry)
    except Lwm2mFormatError:
        raise
    except _INPUT_ERRORS as exc:
        raise Lwm2mFormatError(
            f"content format {content_format}: {type(exc).__name__}: {exc}", ErrorKind.NOT_ACCEPTABLE
        ) from None
