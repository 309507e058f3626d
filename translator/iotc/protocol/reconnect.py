"""When a device session connects again, how long it waits first, and whether it asks DPS again: sans I/O.

Theory of operation. A session's life is a loop: get an assignment (cached, or from DPS) → connect to the
assigned hub → hold the connection until it ends → ask this policy what to do next. Each ending is an
`Ended` event; the answer is a `Retry` (how long to wait, whether the cached assignment must be bypassed,
whether it counts as a disconnect). The policy keeps the only state that spans attempts: the backoff and the
"re-provision next time" flag. The asyncio shell (`translator.iotc.client.session`) does the waiting and the
I/O, and tells the policy when a connection came up (`connected`) and when the hub acknowledged something on
it (`proven`, per PUBACK) so that the next failure starts the backoff afresh.

- A token renewal is no failure: reconnect at once with a new token, same assignment, no backoff drawn.
- A refused CONNECT (CONNACK 2 identifier rejected, 4 bad credentials, 5 not authorized) may mean the device
  moved to another hub or lost its registration: the next attempt runs DPS again instead of the cache. So
  does the third "server unavailable" (3) in a row: IoT Hub answers a disabled device so (the C SDK reads 3
  as DEVICE_DISABLED), and only DPS tells a blocked device from a throttled hub.
- DPS refusing the device as waiting for approval or blocked (401/400209) ends when a person acts: the next
  try, at DPS again, comes after a long wait of its own (`approval_wait.ApprovalWait`), not the backoff.
- Everything else — provisioning failed, the assignment store failed, the network or TLS failed, the
  connection was lost, even a failure nobody foresaw — is transient: back off with full jitter and retry.
  A session never ends on its own; only its owner closes it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from translator.iotc.protocol.approval_wait import ApprovalWait
from translator.iotc.protocol.backoff import Backoff

# CONNACK return codes after which the device may have moved hub or lost its registration (MQTT 3.1.1
# §3.2.2.3: 2 identifier rejected, 4 bad user name or password, 5 not authorized).
REPROVISION_CODES = frozenset({2, 4, 5})
SERVER_UNAVAILABLE = 3
UNAVAILABLE_REPROVISION = 3  # "server unavailable" refusals in a row before DPS is asked again


class Ending(enum.Enum):
    RENEWAL = "token renewal"
    LOST = "connection lost"
    REFUSED = "refused"
    PROVISIONING = "provisioning failed"
    NOT_APPROVED = "waiting for approval or blocked"
    CONNECTION = "connection"
    UNEXPECTED = "unexpected"


@dataclass(frozen=True, slots=True)
class Ended:
    """How one attempt ended; `return_code` is the CONNACK code of a refusal."""

    how: Ending
    reason: str
    return_code: int | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """What to do next: wait `delay` seconds, then get an assignment (from DPS if `reprovision`)."""

    delay: float
    reprovision: bool
    disconnect: bool  # counts as a disconnect (everything but a renewal)
    reason: str
    not_approved: bool = False  # IoT Central refuses the device until an operator approves or unblocks it


class ReconnectPolicy:
    """One device session's reconnect policy. Never shared between sessions."""

    __slots__ = ("_approval", "_backoff", "_reprovision", "_unavailable")

    def __init__(self, backoff: Backoff, approval: ApprovalWait | None = None) -> None:
        """Without `approval`, a refusal for approval is retried like any failure."""
        self._backoff = backoff
        self._approval = approval
        self._reprovision = False
        self._unavailable = 0

    @property
    def reprovision(self) -> bool:
        """Whether the next assignment must come from DPS, not the cache."""
        return self._reprovision

    def assigned(self) -> None:
        """An assignment was obtained: a later refusal decides again."""
        self._reprovision = False
        if self._approval is not None:
            self._approval.reset()

    def connected(self) -> None:
        self._unavailable = 0
        self._backoff.connected()

    def proven(self) -> None:
        self._backoff.proven()

    def retry_after_twin_throttle(self, retry_after: float | None) -> float:
        """The wait before a twin request the hub throttled (429) goes again: its retry-after, else (none, or
        0, which would retry in a tight loop) a draw."""
        return retry_after if retry_after else self._backoff.next_delay()

    def ended(self, ended: Ended) -> Retry:
        if ended.how is Ending.RENEWAL:
            return Retry(0.0, reprovision=False, disconnect=False, reason=ended.reason)
        if ended.how is Ending.NOT_APPROVED and self._approval is not None:
            self._reprovision = True  # a cached assignment would only meet the hub's refusal
            return Retry(
                self._approval.next_delay(), True, disconnect=True, reason=ended.reason, not_approved=True
            )
        if ended.how is Ending.REFUSED and ended.return_code == SERVER_UNAVAILABLE:
            self._unavailable += 1
            if self._unavailable >= UNAVAILABLE_REPROVISION:
                self._unavailable = 0
                self._reprovision = True
        if ended.how is Ending.REFUSED and ended.return_code in REPROVISION_CODES:
            self._reprovision = True
        return Retry(self._backoff.next_delay(), self._reprovision, disconnect=True, reason=ended.reason)
