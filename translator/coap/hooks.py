"""What the CoAP face asks of its owner without knowing the codec or the metrics.

* `ObjectsCheck`: whether a registration's objects can be served at all (e.g. whether they fit an IoT
  Central device template); a reason to refuse the Register/Update with 4.00, or None.
* `RefusalHook`: told of every device request answered with an error code, for the metrics endpoint.
* `RegisterGate`: awaited before a Register is accepted; it raises (e.g. `BackPressure`: 5.03 + Max-Age)
  to refuse it. Several translators on one Redis claim the device there (docs/cluster.md); the device's
  codec file is loaded there (bridge/codec_admission.py). `gates_in_order` runs several.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from translator.coap.errors import CoapFaceError
from translator.coap.identity import DeviceIdentity
from translator.lwm2m import Lwm2mFormatError, RegisteredObjects

ObjectsCheck = Callable[[RegisteredObjects], str | None]
RefusalHook = Callable[[int, str], None]
RegisterGate = Callable[[DeviceIdentity], Awaitable[None]]


def refusal_kind(exc: BaseException) -> str:
    """A bounded label for why a request was refused: the class name of one of our typed errors."""
    if isinstance(exc, CoapFaceError | Lwm2mFormatError | TimeoutError):
        return type(exc).__name__
    return "internal"


def ignore_refusal(code: int, kind: str) -> None:
    return None


def gates_in_order(*gates: RegisterGate | None) -> RegisterGate | None:
    """One gate that awaits each of `gates` in turn: the first that refuses ends the Register (a device
    refused for its codec is never claimed)."""
    chosen = [gate for gate in gates if gate is not None]
    if len(chosen) <= 1:
        return chosen[0] if chosen else None

    async def each(identity: DeviceIdentity) -> None:
        for gate in chosen:
            await gate(identity)

    return each
