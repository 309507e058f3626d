"""Which ids DPS and IoT Hub accept (the emulator's own copy: it shares no code with the translator).

- DPS registration id: "a case-insensitive string of alphanumeric characters plus the special characters:
  '-', '.', '_', ':'. The last character must be alphanumeric or dash ('-'). DPS supports registration IDs
  up to 128 characters long" (https://learn.microsoft.com/azure/iot-dps/concepts-service#registration-id);
  "No special characters allowed at start or end"
  (https://learn.microsoft.com/rest/api/iot-dps/device/runtime-registration/register-device) — the emulator
  takes the first character from the REST page and the last from the terminology page. A body that fails
  validation is answered 400 (https://learn.microsoft.com/azure/iot-dps/how-to-troubleshoot-dps).
- IoT Hub device id: up to 128 ASCII letters, digits and `- . % _ * ? ! ( ) , : = @ $ '`; "The special
  characters + # aren't supported"
  (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-identity-registry#device-identity-properties).
- X.509: "the subject common name of an X.509 certificate is limited to 64 characters"
  (https://learn.microsoft.com/azure/iot-dps/iot-dps-https-x509-support).
"""

from __future__ import annotations

import re

MAX_COMMON_NAME = 64

_REGISTRATION_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:-]{0,126}[A-Za-z0-9-])?")
_DEVICE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}")


def valid_registration_id(text: str) -> bool:
    return _REGISTRATION_ID.fullmatch(text) is not None


def valid_device_id(text: str) -> bool:
    return _DEVICE_ID.fullmatch(text) is not None


def valid_common_name(text: str) -> bool:
    return 0 < len(text) <= MAX_COMMON_NAME
