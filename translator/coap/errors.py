"""The CoAP face's errors: one hierarchy, each mapped once to its wire answer or caller outcome.

Two families:

* `RequestRejected` — something a device sent us is refused; `code` is the CoAP response code the
  server answers with (4.00, 4.03, 4.04, 4.12, 4.13, 4.15, 5.03 ...). `answer_for` is the one place that
  turns any exception raised while handling a device request into a code and a diagnostic payload.
* `DownlinkError` — a server → device operation (Read, Write, Observe ...) did not succeed; statuses.py
  maps these once to IoT Central method statuses.
"""

from __future__ import annotations

import enum

from translator.lwm2m import ErrorKind, Lwm2mFormatError


class Code(enum.IntEnum):
    """CoAP codes used by the face, as the one header byte (class << 5 | detail)."""

    EMPTY = 0
    GET = 1
    POST = 2
    PUT = 3
    DELETE = 4
    FETCH = 5
    PATCH = 6
    IPATCH = 7
    CREATED = 65  # 2.01
    DELETED = 66  # 2.02
    VALID = 67  # 2.03
    CHANGED = 68  # 2.04
    CONTENT = 69  # 2.05
    CONTINUE = 95  # 2.31 (RFC 7959)
    BAD_REQUEST = 128  # 4.00
    UNAUTHORIZED = 129  # 4.01
    BAD_OPTION = 130  # 4.02
    FORBIDDEN = 131  # 4.03
    NOT_FOUND = 132  # 4.04
    METHOD_NOT_ALLOWED = 133  # 4.05
    NOT_ACCEPTABLE = 134  # 4.06
    REQUEST_ENTITY_INCOMPLETE = 136  # 4.08 (RFC 7959)
    PRECONDITION_FAILED = 140  # 4.12
    REQUEST_ENTITY_TOO_LARGE = 141  # 4.13
    UNSUPPORTED_CONTENT_FORMAT = 143  # 4.15
    INTERNAL_SERVER_ERROR = 160  # 5.00
    NOT_IMPLEMENTED = 161  # 5.01
    BAD_GATEWAY = 162  # 5.02
    SERVICE_UNAVAILABLE = 163  # 5.03
    GATEWAY_TIMEOUT = 164  # 5.04
    PROXYING_NOT_SUPPORTED = 165  # 5.05

    @property
    def dotted(self) -> str:
        return dotted(self.value)

    @property
    def is_success(self) -> bool:
        return 64 <= self.value < 96


def dotted(code: int) -> str:
    """A code byte as `c.dd` (e.g. 132 -> "4.04")."""
    return f"{code >> 5}.{code & 0x1F:02d}"


class CoapFaceError(Exception):
    """Base of every error raised by the CoAP face."""


# --- device -> server: answered with a CoAP code ----------------------------------------------------


class RequestRejected(CoapFaceError):
    """A device request we refuse; answered with `code` and `reason` as diagnostic payload."""

    code: Code = Code.BAD_REQUEST

    def __init__(self, reason: str, code: Code | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class BadRequest(RequestRejected):
    code = Code.BAD_REQUEST


class Forbidden(RequestRejected):
    """Admission refused the endpoint (not on the allow-list), or identity does not match."""

    code = Code.FORBIDDEN


class UnknownRegistration(RequestRejected):
    code = Code.NOT_FOUND


class UnsupportedVersion(RequestRejected):
    code = Code.PRECONDITION_FAILED


class PayloadTooLarge(RequestRejected):
    code = Code.REQUEST_ENTITY_TOO_LARGE


class UnsupportedContentFormat(RequestRejected):
    code = Code.UNSUPPORTED_CONTENT_FORMAT


class BackPressure(RequestRejected):
    """Raised by a telemetry sink (or its awaitable) that cannot take data now.

    Answered 5.03 Service Unavailable with Max-Age = `retry_after` seconds, so the device retries later.
    """

    code = Code.SERVICE_UNAVAILABLE

    def __init__(self, reason: str = "back-pressure", retry_after: int = 5) -> None:
        super().__init__(reason)
        self.retry_after = max(0, int(retry_after))


_FORMAT_KIND_CODES = {
    ErrorKind.BAD_REQUEST: Code.BAD_REQUEST,
    ErrorKind.NOT_ACCEPTABLE: Code.NOT_ACCEPTABLE,
    ErrorKind.UNSUPPORTED_CONTENT_FORMAT: Code.UNSUPPORTED_CONTENT_FORMAT,
}


def answer_for(exc: BaseException) -> tuple[Code, str, int | None]:
    """The one mapping from an exception to (response code, diagnostic text, Max-Age or None)."""
    if isinstance(exc, BackPressure):
        return exc.code, exc.reason, exc.retry_after
    if isinstance(exc, RequestRejected):
        return exc.code, exc.reason, None
    if isinstance(exc, Lwm2mFormatError):
        return _FORMAT_KIND_CODES[exc.kind], exc.reason, None
    if isinstance(exc, TimeoutError):
        return Code.SERVICE_UNAVAILABLE, "sink did not confirm in time", 1
    return Code.INTERNAL_SERVER_ERROR, "internal error", None


# --- server -> device ---------------------------------------------------------------------------------


class DownlinkError(CoapFaceError):
    """A device-management operation failed (statuses.py: the method status each kind answers)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason


class NotRegisteredError(DownlinkError):
    """The endpoint has no registration (never registered, de-registered or expired)."""


class DeviceTimeoutError(DownlinkError):
    """The device did not answer: not within the operation's timeout, or the exchange failed (retransmissions
    exhausted, RST, a network error)."""


class DeadlineExpiredError(DownlinkError):
    """A queue-mode device did not wake before the request's deadline; nothing was sent."""


class RegistrationEndedError(DownlinkError):
    """The registration ended (de-register, expiry, server shutdown) while the request was pending."""


class DeviceResponseError(DownlinkError):
    """The device answered with an error code (e.g. 4.04, 4.05, 5.01)."""

    def __init__(self, endpoint: str, code: int, reason: str = "") -> None:
        text = f"device answered {dotted(code)}" + (f": {reason}" if reason else "")
        super().__init__(endpoint, text)
        self.code = code


class DevicePayloadError(DownlinkError):
    """The device's answer could not be decoded (or a value could not be encoded for it)."""


class ServerRefusedError(DownlinkError):
    """Not sent: the request would set something this server itself refuses (a lifetime out of range)."""
