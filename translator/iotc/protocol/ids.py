"""What DPS, IoT Hub and IoT Central accept as a device's id, and the X.509 common-name limit. Pure.

- DPS registration id: "a case-insensitive string of alphanumeric characters plus the special characters
  '-', '.', '_', ':'. The last character must be alphanumeric or dash ('-'). DPS supports registration IDs
  up to 128 characters long" (https://learn.microsoft.com/azure/iot-dps/concepts-service#registration-id).
  The runtime REST reference is stricter: "No special characters allowed at start or end"
  (https://learn.microsoft.com/rest/api/iot-dps/device/runtime-registration/register-device), and some
  translations of it list only `. _ -`.
- IoT Hub device id: "A case-sensitive string (up to 128 characters long) of ASCII 7-bit alphanumeric
  characters plus certain special characters: - . % _ * ? ! ( ) , : = @ $ '. The special characters + #
  aren't supported" (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-identity-registry#device-identity-properties;
  older versions of the page and the Event Grid schema also list `+ # ;`, so those are left out).
- IoT Central: "Enter your own (lowercase) Device ID"
  (https://learn.microsoft.com/azure/iot-central/core/concepts-get-connected); its devices register through
  DPS, so an IoT Central id must also be a registration id.
- X.509: with X.509 attestation the registration id is the certificate's subject CN, and "the subject
  common name of an X.509 certificate is limited to 64 characters"
  (https://learn.microsoft.com/azure/iot-dps/iot-dps-https-x509-support; RFC 5280 ub-common-name).

`is_safe_device_id` is the intersection of all of them (lowercase, first and last character a letter or
digit, `:` kept because DPS's own terminology page and English REST reference list it): the rule in
`translator/coap/device_id.py` produces only such ids.
"""

from __future__ import annotations

import re

MAX_ID = 128
MAX_COMMON_NAME = 64

_REGISTRATION_ID = re.compile(r"[A-Za-z0-9._:-]{0,127}[A-Za-z0-9-]")
_HUB_DEVICE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}")
_SAFE_ID = re.compile(r"[a-z0-9]([a-z0-9._:-]{0,126}[a-z0-9])?")


def is_registration_id(text: str) -> bool:
    """DPS accepts `text` as a registration id (terminology page's rule)."""
    return _REGISTRATION_ID.fullmatch(text) is not None


def is_hub_device_id(text: str) -> bool:
    """IoT Hub accepts `text` as a device id."""
    return _HUB_DEVICE_ID.fullmatch(text) is not None


def is_safe_device_id(text: str) -> bool:
    """Every page agrees: a registration id, a hub device id and a lowercase IoT Central id."""
    return _SAFE_ID.fullmatch(text) is not None


def id_problem(device_id: str, *, via_dps: bool = True) -> str:
    """'' when the services accept `device_id`, else why not (for an error message)."""
    if not is_hub_device_id(device_id):
        return (
            f"{device_id!r} is not an IoT Hub device id "
            "(1-128 ASCII letters, digits and - . % _ * ? ! ( ) , : = @ $ ')"
        )
    if via_dps and not is_registration_id(device_id):
        return (
            f"{device_id!r} is not a DPS registration id (letters, digits and - . _ :, at most 128, "
            "ending in a letter, digit or -)"
        )
    return ""
