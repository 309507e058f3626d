"""Device approval and blocked devices, as IoT Central answers them (pure: no I/O).

IoT Central's device status (https://learn.microsoft.com/azure/iot-central/core/howto-manage-devices-individually
#device-status-values): with **Auto approve** off in the device connection group, a device nobody registered
that connects with valid credentials appears as *Waiting for approval* — REST `provisioned: false,
enabled: false` — until an operator approves it (`enabled: true`); an operator can block any device
(`enabled: false`). Either way DPS refuses it with 401 and sub-code 400209, "the device is either waiting for
approval by an operator or has been blocked by an operator"
(https://learn.microsoft.com/azure/iot-central/core/troubleshoot-connection#detailed-authorization-error-codes).
"""

from __future__ import annotations

from emulator.state import Application

REFUSED_STATUS = 401
REFUSED_CODE = 400209
# The two messages `az iot central device registration-info` shows for the two states (same page).
WAITING_MESSAGE = (
    "Device isn't approved to connect to the IoT Central application. "
    "Approve the device in IoT Central and retry."
)
BLOCKED_MESSAGE = (
    "Device is blocked from connecting to IoT Central application. "
    "Unblock the device in IoT Central and retry."
)


def refusal(application: Application, registration_id: str, *, auto_approve: bool) -> str:
    """'' when the (authenticated) device may register; else why not. A device nobody registered gets its
    record now: approved at once with auto-approve, else waiting for an operator."""
    device = application.device(registration_id)
    if device is None:
        device = application.ensure_device(registration_id)
        device.enabled = auto_approve
    if device.enabled:
        return ""
    return BLOCKED_MESSAGE if device.provisioned else WAITING_MESSAGE
