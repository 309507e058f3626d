"""How long a device waits before asking DPS again while IoT Central refuses it: sans I/O.

DPS answers 401 with sub-code 400209 when "the device is either waiting for approval by an operator or has
been blocked by an operator" (https://learn.microsoft.com/azure/iot-central/core/troubleshoot-connection
#detailed-authorization-error-codes). That is no transient fault: it ends when a person approves or unblocks
the device, so the reconnect loop's short backoff (seconds, full jitter from 0) would only spend the
application's DPS quota (registrations per minute) on a question whose answer has not changed. Instead the
wait is long and grows — ceiling = min(cap, base × 2^attempt) — and each wait is drawn uniformly from
[ceiling/2, ceiling) ("equal jitter"): a fleet refused at once spreads out, and no draw is ever short.
"""

from __future__ import annotations

from dataclasses import dataclass

from translator.iotc.protocol.backoff import BackoffPolicy, RandomSource


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    base: float = 60.0  # the first wait is drawn from [base/2, base)
    cap: float = 900.0

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base):
            raise ValueError("approval waits need base > 0 and cap >= base")


class ApprovalWait:
    """One device's waits while refused (never shared); `reset` once it is assigned again."""

    __slots__ = ("_attempt", "_ceilings", "_random")

    def __init__(self, policy: ApprovalPolicy, random: RandomSource) -> None:
        self._ceilings = BackoffPolicy(base=policy.base, cap=policy.cap)
        self._random = random
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt

    def next_delay(self) -> float:
        ceiling = self._ceilings.ceiling(self._attempt)
        self._attempt += 1
        draw = self._random()
        if not 0.0 <= draw < 1.0:
            raise ValueError(f"random source returned {draw!r}, outside [0, 1)")
        return ceiling / 2 + draw * ceiling / 2

    def reset(self) -> None:
        self._attempt = 0
