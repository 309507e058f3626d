"""The IoT Central face's exceptions: one hierarchy, each mapped once to what the caller should do.

`ProvisioningError` covers DPS; `HubError` covers the IoT Hub device session. Format errors for
things we parse (topics, property bags, twin documents, SAS tokens) are `ValueError`s too, so code
that only cares about "bad input" can catch that.
"""

from __future__ import annotations

# IoT Hub refuses device-to-cloud messages above 256 KB (body plus properties).
MAX_MESSAGE_BYTES = 256 * 1024


class IotcError(Exception):
    """Base of every error raised by the IoT Central face."""


# --- format errors -------------------------------------------------------------------------------


class IotcFormatError(IotcError, ValueError):
    """Something we were asked to parse or encode is malformed."""


class SasTokenError(IotcFormatError):
    """A SAS token or signing key is malformed."""


class TopicError(IotcFormatError):
    """An MQTT topic is not one of the DPS / IoT Hub topics we know, or is malformed."""


class PropertyBagError(IotcFormatError):
    """A property bag cannot be encoded or decoded."""


class TwinFormatError(IotcFormatError):
    """A twin, desired patch or reported document does not have the expected shape."""


class MethodNameError(IotcFormatError):
    """A direct method name is not `command` or `component*command`."""


# --- provisioning (DPS) --------------------------------------------------------------------------


class ProvisioningError(IotcError):
    """DPS did not assign the device.

    `status` is the HTTP-like status of the response (0 when there was none), `error_code` the
    six-digit DPS error code when the body carried one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        error_code: int | None = None,
        tracking_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.tracking_id = tracking_id


class ProvisioningUnauthorizedError(ProvisioningError):
    """401xxx: the SAS token or certificate was refused (wrong key, wrong scope, expired token)."""


class DeviceBlockedError(ProvisioningError):
    """400209: the device is blocked, or not associated with a template, in IoT Central."""


class ProvisioningThrottledError(ProvisioningError):
    """429: too many registrations; retried with backoff until the attempt budget ran out."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int = 429,
        error_code: int | None = None,
        tracking_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, error_code=error_code, tracking_id=tracking_id)
        self.retry_after = retry_after


class ProvisioningFailedError(ProvisioningError):
    """The registration finished without an assignment: `failed`, `disabled` or another status."""

    def __init__(
        self,
        message: str,
        *,
        registration_status: str,
        substatus: str | None = None,
        status: int = 200,
        error_code: int | None = None,
        tracking_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, error_code=error_code, tracking_id=tracking_id)
        self.registration_status = registration_status
        self.substatus = substatus


class ProvisioningProtocolError(ProvisioningError):
    """DPS answered with something we cannot make sense of (bad JSON, missing fields)."""


# --- IoT Hub device session ----------------------------------------------------------------------


class HubError(IotcError):
    """The hub refused or lost something.

    `reprovision` tells the session owner that running DPS again may help: IoT Central can move
    a device to another hub, and the old hub then answers unauthorized / not found.
    """

    reprovision: bool = False

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class HubUnauthorizedError(HubError):
    """The hub refused the credentials (CONNACK 4/5, or a 401 response)."""

    reprovision = True


class DeviceNotFoundError(HubError):
    """The hub does not know this device (404): deleted, disabled, or moved to another hub."""

    reprovision = True


class HubThrottledError(HubError):
    """429: over a hub or IoT Central quota."""

    def __init__(self, message: str, *, status: int = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ConnectionLostError(HubError):
    """The MQTT connection dropped; IoT Hub reports most errors this way."""


class MessageTooLargeError(HubError):
    """A device-to-cloud message would exceed IoT Hub's 256 KB limit; it is refused before sending."""

    def __init__(self, size: int, limit: int = MAX_MESSAGE_BYTES) -> None:
        super().__init__(f"message of {size} bytes exceeds the {limit}-byte limit", status=413)
        self.size = size
        self.limit = limit


class HubRequestError(HubError):
    """A twin request answered with a status we do not map to a more specific error."""


def hub_error_for_status(status: int, *, retry_after: float | None = None, what: str = "request") -> HubError:
    """The error to raise for a non-2xx hub response status (twin GET / PATCH responses)."""
    message = f"{what} failed with status {status}"
    if status == 401:
        return HubUnauthorizedError(message, status=status)
    if status == 404:
        return DeviceNotFoundError(message, status=status)
    if status == 429:
        return HubThrottledError(message, status=status, retry_after=retry_after)
    return HubRequestError(message, status=status)
