"""The one mapping from a downlink's failure to the status of the IoT Central method (command) answer. Pure.

IoT Central shows the status a device returns for a command
(https://learn.microsoft.com/azure/iot-central/core/howto-use-commands); for IoT Hub, which carries it, the
status is the device's own, HTTP-like (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods,
"Response"). The translator answers for the LwM2M device like an HTTP-CoAP proxy:

* the device answered with an error code: RFC 8075 §7 (Table 2), the standard CoAP → HTTP mapping — 4.01 is
  403 (HTTP's 401 needs a WWW-Authenticate CoAP has no equivalent of), 4.05 is 400 (HTTP's 405 needs an Allow
  list the proxy cannot know), 5.05 is 502; a code the table lacks counts as the generic one of its class
  (RFC 7252 §5.9.2/§5.9.3: 4.00 → 400, 5.00 → 500);
* the device did not answer: as IoT Hub answers a direct method itself — 404 when the device is not online
  (not registered), 504 when it did not answer in time (no answer, retransmissions exhausted, RST, or a
  queue-mode device that did not wake before the deadline);
* the registration ended while the request waited: 503 (the device is gone for now; try again later);
* the answer could not be understood: 502, a bad answer from upstream;
* this server refused to send the request (a lifetime its own Register would refuse): 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from translator.coap.errors import (
    Code,
    DeadlineExpiredError,
    DevicePayloadError,
    DeviceResponseError,
    DeviceTimeoutError,
    DownlinkError,
    NotRegisteredError,
    RegistrationEndedError,
    ServerRefusedError,
)

# RFC 8075 §7, Table 2 (the error rows; 2.xx answers are successes and never reach this table).
DEVICE_ANSWERS: Mapping[int, HTTPStatus] = {
    Code.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    Code.UNAUTHORIZED: HTTPStatus.FORBIDDEN,
    Code.BAD_OPTION: HTTPStatus.BAD_REQUEST,
    Code.FORBIDDEN: HTTPStatus.FORBIDDEN,
    Code.NOT_FOUND: HTTPStatus.NOT_FOUND,
    Code.METHOD_NOT_ALLOWED: HTTPStatus.BAD_REQUEST,
    Code.NOT_ACCEPTABLE: HTTPStatus.NOT_ACCEPTABLE,
    Code.PRECONDITION_FAILED: HTTPStatus.PRECONDITION_FAILED,
    Code.REQUEST_ENTITY_TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    Code.UNSUPPORTED_CONTENT_FORMAT: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    Code.INTERNAL_SERVER_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
    Code.NOT_IMPLEMENTED: HTTPStatus.NOT_IMPLEMENTED,
    Code.BAD_GATEWAY: HTTPStatus.BAD_GATEWAY,
    Code.SERVICE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    Code.GATEWAY_TIMEOUT: HTTPStatus.GATEWAY_TIMEOUT,
    Code.PROXYING_NOT_SUPPORTED: HTTPStatus.BAD_GATEWAY,
}

# Failures that are not an answer of the device; the first class that matches wins (subclasses first).
DOWNLINK_ERRORS: tuple[tuple[type[DownlinkError], HTTPStatus], ...] = (
    (NotRegisteredError, HTTPStatus.NOT_FOUND),
    (DeviceTimeoutError, HTTPStatus.GATEWAY_TIMEOUT),
    (DeadlineExpiredError, HTTPStatus.GATEWAY_TIMEOUT),
    (RegistrationEndedError, HTTPStatus.SERVICE_UNAVAILABLE),
    (DevicePayloadError, HTTPStatus.BAD_GATEWAY),
    (ServerRefusedError, HTTPStatus.BAD_REQUEST),
)


def status_for_answer(code: int) -> HTTPStatus:
    """The method status for the device's error answer `code` (the CoAP code byte, e.g. 132 for 4.04)."""
    known = DEVICE_ANSWERS.get(code)
    if known is not None:
        return known
    if code >> 5 == 4:
        return HTTPStatus.BAD_REQUEST
    if code >> 5 == 5:
        return HTTPStatus.INTERNAL_SERVER_ERROR
    return HTTPStatus.BAD_GATEWAY  # neither a success nor an error class: not a valid answer


def method_status(error: DownlinkError) -> HTTPStatus:
    """The method status for a downlink that failed with `error`."""
    if isinstance(error, DeviceResponseError):
        return status_for_answer(error.code)
    for kind, status in DOWNLINK_ERRORS:
        if isinstance(error, kind):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR
