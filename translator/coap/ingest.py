"""Payload → records for the telemetry resources: LwM2M Send (`/dp`) and plain CBOR ingest. Pure.

Plain CBOR ingest (for sensors that do not speak LwM2M):

    POST coap://server/ingest?ep={name}      Content-Format 60 (application/cbor) or none
    payload: {"temperature": 21.5, "humidity": 40, "t": 1735689600}
         or: [{"temperature": 21.5, "t": 1735689600}, {"temperature": 21.7, "t": 1735689660}]

* `ep` names the sensor exactly like an LwM2M endpoint (same device-id rule, same admission); no
  registration is needed.
* Each map is one reading; keys are text names, values integers, floats, booleans, text or bytes.
* `t` (optional) is the reading's time in Unix seconds (a number). As in SenML, a value below 2**28 is
  relative to now (so `-30` means 30 s ago); no `t` means "now" as the translator receives it.
* NaN, infinities and times outside 1970..9999 refuse the whole request (4.00 naming the reading), as
  for every LwM2M content format (`translator.lwm2m.representable`).
* A key starting with `/` is an LwM2M path (`"/3303/0/5700": 21.5`) and becomes an ordinary Record, so a
  simple sensor can reuse the IPSO mapping; other keys become `NamedRecord`s.
* Answers: 2.04 once the sink has the data safe; 4.00 for a malformed payload; 4.15 for another
  content format; 4.13 when the payload exceeds the configured maximum.
"""

from __future__ import annotations

from typing import Any

import cbor2

from translator.coap.errors import BadRequest, PayloadTooLarge, UnsupportedContentFormat
from translator.coap.sink import NamedRecord, TelemetryRecord
from translator.lwm2m import (
    ContentFormat,
    Lwm2mFormatError,
    ObjectRegistry,
    Path,
    Record,
    ResourceLookup,
    UnrepresentableValue,
    decode,
)
from translator.lwm2m.representable import problem

SEND_FORMATS = frozenset({ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR})
CBOR = 60
MAX_NAME = 256
MAX_READINGS = 1024
_RELATIVE_LIMIT = 1 << 28


def decode_send(
    content_format: int | None,
    payload: bytes,
    *,
    registry: ResourceLookup | ObjectRegistry | None,
    now: float,
    max_payload: int,
) -> list[Record]:
    """The records of an LwM2M Send (`POST /dp`)."""
    if content_format is None:
        raise BadRequest("Send without Content-Format")
    if content_format not in SEND_FORMATS:
        raise UnsupportedContentFormat(f"content format {content_format} is not accepted on /dp")
    if len(payload) > max_payload:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {max_payload}")
    return decode(content_format, payload, registry=registry, now=now, max_payload=max_payload)


def _time(value: Any, now: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # noqa: PLR0124 - NaN
        raise BadRequest("ingest: 't' must be a number")
    try:
        t = float(value)
    except OverflowError:  # an integer beyond any float: no calendar holds it either
        raise UnrepresentableValue("ingest: 't' is not between 1970 and 9999") from None
    return now + t if abs(t) < _RELATIVE_LIMIT else t


def _reading(index: int, item: Any, now: float, out: list[TelemetryRecord]) -> None:
    if not isinstance(item, dict):
        raise BadRequest("ingest: each reading must be a CBOR map")
    time = _time(item["t"], now) if "t" in item else None
    for name, value in item.items():
        if name == "t":
            continue
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise BadRequest(f"ingest: invalid name {name!r}"[:120])
        if not isinstance(value, bool | int | float | str | bytes):
            raise BadRequest(f"ingest: value of {name!r} is not a scalar")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
            raise BadRequest(f"ingest: integer {name!r} out of range")
        if (why := problem(value, time)) is not None:
            raise UnrepresentableValue(f"ingest: reading {index} {name!r}: {why}"[:160])
        if name.startswith("/"):
            try:
                path = Path.parse(name)
            except Lwm2mFormatError as exc:
                raise BadRequest(f"ingest: {exc.reason}") from None
            out.append(Record(path, value, time))
        else:
            out.append(NamedRecord(name, value, time))


def decode_ingest(
    content_format: int | None, payload: bytes, *, now: float, max_payload: int
) -> list[TelemetryRecord]:
    """The records of a plain CBOR ingest payload (see the module docstring)."""
    if content_format not in (None, CBOR):
        raise UnsupportedContentFormat(f"content format {content_format} is not accepted on /ingest")
    if len(payload) > max_payload:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {max_payload}")
    if not payload:
        raise BadRequest("ingest: empty payload")
    try:
        doc = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError, LookupError, RecursionError, OverflowError):
        raise BadRequest("ingest: payload is not valid CBOR") from None
    out: list[TelemetryRecord] = []
    if isinstance(doc, list):
        if not doc or len(doc) > MAX_READINGS:
            raise BadRequest("ingest: a batch must hold 1..1024 readings")
        for index, item in enumerate(doc):
            _reading(index, item, now, out)
    else:
        _reading(0, doc, now, out)
    if not out:
        raise BadRequest("ingest: no values")
    return out
