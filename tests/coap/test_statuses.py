"""The one mapping from a downlink's failure to a method status, as a table. Pure."""

from __future__ import annotations

import pytest

from translator.coap.errors import (
    DeadlineExpiredError,
    DevicePayloadError,
    DeviceResponseError,
    DeviceTimeoutError,
    DownlinkError,
    NotRegisteredError,
    RegistrationEndedError,
    ServerRefusedError,
)
from translator.coap.statuses import method_status


def coap(dotted: str) -> int:
    cls, detail = dotted.split(".")
    return int(cls) << 5 | int(detail)


# RFC 8075 §7 Table 2 for the device's answers; unknown codes count as their class's generic one.
ANSWERS = [
    ("4.00", 400),
    ("4.01", 403),  # not 401: HTTP's 401 needs a WWW-Authenticate
    ("4.02", 400),
    ("4.03", 403),
    ("4.04", 404),
    ("4.05", 400),  # not 405: HTTP's 405 needs an Allow list
    ("4.06", 406),
    ("4.08", 400),  # not in the table: generic 4.00
    ("4.12", 412),
    ("4.13", 413),
    ("4.15", 415),
    ("4.29", 400),  # unknown 4.xx
    ("5.00", 500),
    ("5.01", 501),
    ("5.02", 502),
    ("5.03", 503),
    ("5.04", 504),
    ("5.05", 502),
    ("5.09", 500),  # unknown 5.xx
    ("3.00", 502),  # no such class in an answer: a bad answer
]


@pytest.mark.parametrize(("answer", "status"), ANSWERS)
def test_device_answers(answer: str, status: int) -> None:
    assert method_status(DeviceResponseError("ep", coap(answer))) == status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotRegisteredError("ep", "not registered"), 404),  # IoT Hub: the device is not online
        (DeviceTimeoutError("ep", "no answer within 10s"), 504),  # IoT Hub: no answer in time
        (DeadlineExpiredError("ep", "device did not wake"), 504),
        (RegistrationEndedError("ep", "de-registered"), 503),
        (DevicePayloadError("ep", "undecodable answer"), 502),
        (ServerRefusedError("ep", "lifetime out of range"), 400),
        (DownlinkError("ep", "anything else"), 500),
    ],
)
def test_downlink_errors(error: DownlinkError, status: int) -> None:
    assert method_status(error) == status
