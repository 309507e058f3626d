"""The vocabulary of the delivery order (`ordering.DeliveryOrder`): the batches it orders, the actions it
asks the shell to perform and the events the shell feeds it. Plain data, no behaviour; not frozen, since
some are made per message on the hot path and a frozen dataclass sets each field the slow way."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

M = TypeVar("M")  # a message, opaque to the machine
T = TypeVar("T")  # the shell's tag of a batch: where its answer goes


class Row(Protocol):
    """An outbox row: the machine needs only its place in the outbox."""

    @property
    def sequence(self) -> int: ...


R = TypeVar("R", bound=Row)


@dataclass(eq=False, slots=True)
class Batch(Generic[M, T]):
    """Messages the device sent together, answered together."""

    messages: tuple[M, ...]
    tag: T
    direct: bool = False  # may be published straight away (one message, not one that waited)
    done: int = 0  # messages published or kept
    kept: bool = False  # one of them went to the outbox
    answered: bool = False


# -- actions (the shell performs them; the I/O ones are answered by an event naming them) --------------


@dataclass(eq=False, slots=True)
class Publish(Generic[M, T]):
    """Publish `message` with QoS 1; answer `Published` or `NotPublished`. `direct`: without waiting,
    from the arrival (answer `DirectRefused` if the session cannot take it now)."""

    batch: Batch[M, T]
    message: M
    direct: bool


@dataclass(eq=False, slots=True)
class Keep(Generic[M, T]):
    """Append `message` to the outbox; answer `Kept` once committed, or `NotKept`."""

    batch: Batch[M, T]
    message: M


@dataclass(slots=True)
class Acknowledge(Generic[M, T]):
    """Tell the device its batch is safe: `kept` if any of it is in the outbox, else published."""

    batch: Batch[M, T]
    kept: bool


@dataclass(slots=True)
class Refuse(Generic[M, T]):
    batch: Batch[M, T]
    error: BaseException


@dataclass(eq=False, slots=True)
class Load:
    """Read the oldest `limit` outbox rows; answer `Loaded` or `NotLoaded`."""

    limit: int


@dataclass(eq=False, slots=True)
class SendRow(Generic[R]):
    """Publish an outbox row with QoS 1; answer `RowSent` or `RowNotSent`."""

    row: R


@dataclass(eq=False, slots=True)
class Remove:
    """Remove replayed rows from the outbox; answer `Removed` or `NotRemoved`."""

    sequences: tuple[int, ...]


class Pause(enum.Enum):
    SLOW_HUB = "slow_hub"
    STORE = "store"
    PACED = "paced"  # the telemetry pacers (iotc/client/pacer.py) would hold the next row too long


@dataclass(slots=True)
class ReplayIn:
    """Report `ReplayDue` after `delay` seconds (replacing any earlier such timer)."""

    delay: float
    why: Pause


@dataclass(slots=True)
class Replayed:
    """A chunk of the outbox reached the hub and left the outbox (for logs and metrics)."""

    count: int


# -- events ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Arrived(Generic[M, T]):
    batch: Batch[M, T]


@dataclass(slots=True)
class Started:
    """The shell learnt whether the device's outbox is empty (at the start of its life)."""

    outbox_empty: bool


@dataclass(slots=True)
class SessionUp:
    pass


@dataclass(slots=True)
class SessionDown:
    pass


@dataclass(slots=True)
class ReplayDue:
    pass


@dataclass(slots=True)
class Close:
    """The device's life ends: every batch not answered yet is refused with `error`."""

    error: BaseException


@dataclass(slots=True)
class Published(Generic[M, T]):
    action: Publish[M, T]


@dataclass(slots=True)
class NotPublished(Generic[M, T]):
    action: Publish[M, T]
    timed_out: bool  # its deadline passed (the PUBACK may still come); else the publish was lost


@dataclass(slots=True)
class DirectRefused(Generic[M, T]):
    action: Publish[M, T]


@dataclass(slots=True)
class Paced(Generic[M, T, R]):
    """Not published: the device's or the fleet's send rate would hold it `wait` seconds — past a message's
    time (`Publish`: it is kept instead), or longer than a replay row should hold the device's line
    (`SendRow`: the replay pauses that long and what arrives meanwhile is kept behind the outbox)."""

    action: Publish[M, T] | SendRow[R]
    wait: float


@dataclass(slots=True)
class Kept(Generic[M, T]):
    action: Keep[M, T]


@dataclass(slots=True)
class NotKept(Generic[M, T]):
    action: Keep[M, T]
    error: BaseException


@dataclass(slots=True)
class Loaded(Generic[R]):
    action: Load
    rows: Sequence[R]


@dataclass(slots=True)
class NotLoaded:
    action: Load


@dataclass(slots=True)
class RowSent(Generic[R]):
    action: SendRow[R]


@dataclass(slots=True)
class RowNotSent(Generic[R]):
    action: SendRow[R]


@dataclass(slots=True)
class Removed:
    action: Remove


@dataclass(slots=True)
class NotRemoved:
    action: Remove


Action = (
    Publish[M, T] | Keep[M, T] | Acknowledge[M, T] | Refuse[M, T] | Load | SendRow[R] | Remove | ReplayIn
) | Replayed
Event = (
    Arrived[M, T]
    | Started
    | SessionUp
    | SessionDown
    | ReplayDue
    | Close
    | Published[M, T]
    | NotPublished[M, T]
    | DirectRefused[M, T]
    | Paced[M, T, R]
    | Kept[M, T]
    | NotKept[M, T]
    | Loaded[R]
    | NotLoaded
    | RowSent[R]
    | RowNotSent[R]
    | Removed
    | NotRemoved
)
Busy = Publish[M, T] | Keep[M, T] | Load | SendRow[R] | Remove
