"""IoT Hub MQTT property bags: the `k=v&k=v` tail of telemetry and cloud-to-device topics.

Values are percent-encoded with `quote(..., safe="")` as Microsoft's Python device SDK does
(`mqtt_topic_iothub.encode_message_properties_in_topic`): never `quote_plus`, because `+` is an
MQTT wildcard and a literal `+` in a value must survive. Keys are encoded the same way except that
`$` stays literal, giving `$.ct=application%2Fjson&$.ce=utf-8` exactly as Microsoft's MQTT
documentation writes it (the Python SDK sends `%24.ct`; the hub decodes both). Decoding uses
`unquote`, never `unquote_plus`, and compares keys after decoding, so `%24.mid` from the hub is
`$.mid`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from translator.iotc.protocol.errors import PropertyBagError

CONTENT_TYPE = "$.ct"
CONTENT_ENCODING = "$.ce"
COMPONENT = "$.sub"
MESSAGE_ID = "$.mid"
CORRELATION_ID = "$.cid"
USER_ID = "$.uid"
TO = "$.to"
EXPIRY = "$.exp"
CREATION_TIME = "iothub-creation-time-utc"
ACK = "iothub-ack"
METHOD_NAME = "method-name"
"""IoT Central puts the command name of a queued (offline) command in this app property."""

_SYSTEM_KEYS = (CONTENT_TYPE, CONTENT_ENCODING, COMPONENT, MESSAGE_ID, CORRELATION_ID, USER_ID, TO, EXPIRY)
_TYPED_KEYS = frozenset((*_SYSTEM_KEYS, CREATION_TIME, ACK))


def encode_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """`k=v&k=v` with both sides percent-encoded."""
    try:
        return "&".join(f"{quote(key, safe='$')}={quote(value, safe='')}" for key, value in pairs)
    except UnicodeEncodeError as exc:
        raise PropertyBagError("property bag text is not encodable as UTF-8") from exc


def decode_pairs(bag: str) -> list[tuple[str, str]]:
    """The decoded pairs of `k=v&k=v`, in order; a key without `=` gets an empty value."""
    pairs: list[tuple[str, str]] = []
    for part in bag.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        try:
            pairs.append((unquote(key, errors="strict"), unquote(value, errors="strict")))
        except UnicodeDecodeError as exc:
            raise PropertyBagError(f"property {part!r} is not percent-encoded UTF-8") from exc
    return pairs


def format_creation_time(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, e.g. `2024-05-01T12:00:00.123Z`."""
    if moment.tzinfo is None:
        raise PropertyBagError("creation time must be timezone-aware")
    u = moment.astimezone(UTC)
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 on every platform.
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def parse_creation_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PropertyBag:
    """The system and application properties of one message.

    `custom` holds application properties in order, as pairs, so the value stays immutable and
    hashable. `creation_time` is IoT Hub's `iothub-creation-time-utc` (the device's own timestamp);
    `component` is `$.sub`, which IoT Central reads as the component of component telemetry.
    On the devicebound side `to` (`$.to`) and `ack` (`iothub-ack`) are filled by the hub.
    """

    content_type: str | None = None
    content_encoding: str | None = None
    component: str | None = None
    creation_time: datetime | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    user_id: str | None = None
    expiry: str | None = None
    to: str | None = None
    ack: str | None = None
    custom: tuple[tuple[str, str], ...] = ()

    @classmethod
    def telemetry(
        cls,
        *,
        component: str | None = None,
        creation_time: datetime | None = None,
        content_type: str | None = "application/json",
        content_encoding: str | None = "utf-8",
        custom: Mapping[str, str] | None = None,
    ) -> PropertyBag:
        """The bag IoT Central wants on telemetry: JSON, UTF-8, optional component and timestamp."""
        return cls(
            content_type=content_type,
            content_encoding=content_encoding,
            component=component,
            creation_time=creation_time,
            custom=tuple((custom or {}).items()),
        )

    def get(self, key: str) -> str | None:
        """The first application property named `key`."""
        return next((value for name, value in self.custom if name == key), None)

    @property
    def method_name(self) -> str | None:
        """The command of a queued IoT Central command (`method-name`), if any."""
        return self.get(METHOD_NAME)

    def pairs(self) -> list[tuple[str, str]]:
        """Decoded pairs in wire order: system properties, creation time, then custom ones."""
        system = (
            (CONTENT_TYPE, self.content_type),
            (CONTENT_ENCODING, self.content_encoding),
            (COMPONENT, self.component),
            (MESSAGE_ID, self.message_id),
            (CORRELATION_ID, self.correlation_id),
            (USER_ID, self.user_id),
            (EXPIRY, self.expiry),
            (TO, self.to),
        )
        pairs = [(key, value) for key, value in system if value is not None]
        if self.creation_time is not None:
            pairs.append((CREATION_TIME, format_creation_time(self.creation_time)))
        if self.ack is not None:
            pairs.append((ACK, self.ack))
        seen: set[str] = set()
        for key, value in self.custom:
            if not key:
                raise PropertyBagError("property names must not be empty")
            if key in _TYPED_KEYS and (key != CREATION_TIME or self.creation_time is not None):
                raise PropertyBagError(f"{key!r} is a typed field of PropertyBag, not a custom property")
            if key in seen:
                raise PropertyBagError(f"duplicate property {key!r}")
            seen.add(key)
            pairs.append((key, value))
        return pairs

    def encode(self) -> str:
        """The percent-encoded bag, without a leading `/` or `?`."""
        return encode_pairs(self.pairs())

    @classmethod
    def decode(cls, bag: str) -> PropertyBag:
        """Decode a bag as the hub sends it (devicebound) or as a device sends it (events).

        Lenient on purpose: an unparseable `iothub-creation-time-utc` stays a custom property
        rather than dropping a cloud-to-device message.
        """
        fields: dict[str, str] = {}
        creation: datetime | None = None
        custom: list[tuple[str, str]] = []
        for key, value in decode_pairs(bag):
            if key in _SYSTEM_KEYS or key == ACK:
                fields.setdefault(key, value)
            elif key == CREATION_TIME and creation is None and (parsed := parse_creation_time(value)):
                creation = parsed
            else:
                custom.append((key, value))
        return cls(
            content_type=fields.get(CONTENT_TYPE),
            content_encoding=fields.get(CONTENT_ENCODING),
            component=fields.get(COMPONENT),
            creation_time=creation,
            message_id=fields.get(MESSAGE_ID),
            correlation_id=fields.get(CORRELATION_ID),
            user_id=fields.get(USER_ID),
            expiry=fields.get(EXPIRY),
            to=fields.get(TO),
            ack=fields.get(ACK),
            custom=tuple(custom),
        )
