"""The order of one device's telemetry on its way to IoT Central, as a pure state machine.

Theory of operation (in the manner of h11: events in, actions out, no I/O here). `DeliveryOrder.handle`
takes an event — telemetry arrived, the session came up or went down, or the result of an action it asked
for earlier — and returns the actions the shell (`delivery.TelemetryDelivery`) must perform: publish a
message, keep it in the outbox, load, send or remove outbox rows, wait before replaying again, and answer
the device (acknowledge with whether anything was kept, or refuse with an error). The shell performs them
and feeds each result back as an event naming the action it answers; a result for an action the machine no
longer waits for (a PUBACK after the publish's deadline passed, an answer after `Close`) is ignored.

At most one I/O action is in flight at a time (`busy`), so the device's messages leave in the order they
arrived; everything else waits in `pending` (batches, in arrival order) or as a wish to replay. Which step
comes next:

1. the rest of the batch being delivered (`current`), message by message: published while the outbox is
   known empty and the session is up, else kept in the outbox — so nothing newer overtakes a kept row;
2. rows sent but not removed yet are removed once the loaded rows are sent, before anything else of the
   outbox is loaded or sent again (a failing removal pauses the replay and so costs no duplicate);
3. a new batch, or the replay's next step (a row loaded, else the next chunk): they take turns row by row,
   so a device that keeps sending neither starves its replay nor waits for a chunk — a row may wait for
   the pacers (`Paced`) — or a whole outbox to drain. A new batch delivered while the outbox holds rows is
   kept behind them, so the order holds.

The promise behind every acknowledgement: `Acknowledge` is returned only for a batch whose every message
was answered by `Published` (the hub's PUBACK) or `Kept` (the outbox row committed). Every other ending —
a failed keep, `Close` — returns `Refuse` with the error the event carried. Each batch gets exactly one
answer.

Failures. A publish straight from arrival (`direct`, the common case: nothing else of the device under
way) that is lost is published again (or kept, if the session went down meanwhile); one whose deadline
passed is kept, since its PUBACK may still come. Any other publish that fails is kept. A replay that fails —
a row not acknowledged (the hub is slow: `slow_hub_retry`), the store unreadable or a removal refused
(`store_retry`) — pauses with `ReplayIn`, and goes on when the shell reports `ReplayDue`, the session comes
up again, or a keep succeeds while connected. A duplicate at the hub therefore only follows a publish or a
row whose PUBACK was lost.

Pacing (issue 14 §3). Before it publishes, the shell asks the telemetry pacers how long the message would
wait for its turn. A publish that would wait past the message's time is answered `Paced` and kept instead —
acknowledged once the row is committed, refused (5.03 + Max-Age) when the outbox is full, as any keep. A
replay row that would wait long is answered `Paced` too: the replay pauses for that wait (`Pause.PACED`;
neither a keep nor the session coming up cuts it short), so the outbox drains at the pacers' rate while new
batches are kept behind it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Generic

from translator.bridge.ordering_events import (
    Acknowledge,
    Action,
    Arrived,
    Batch,
    Busy,
    Close,
    DirectRefused,
    Event,
    Keep,
    Kept,
    Load,
    Loaded,
    M,
    NotKept,
    NotLoaded,
    NotPublished,
    NotRemoved,
    Paced,
    Pause,
    Publish,
    Published,
    R,
    Refuse,
    Remove,
    Removed,
    ReplayDue,
    Replayed,
    ReplayIn,
    RowNotSent,
    RowSent,
    SendRow,
    SessionDown,
    SessionUp,
    Started,
    T,
)


@dataclass(slots=True)
class _Replay(Generic[R]):
    wanted: bool = False  # the outbox may hold rows and nothing pauses the replay
    rows: deque[R] = field(default_factory=deque)  # loaded, not sent yet
    unremoved: list[int] = field(default_factory=list)  # sent (PUBACKed), not removed yet
    sent: int = 0  # in this chunk
    paced: bool = False  # paused for the pacers until `ReplayDue`


class DeliveryOrder(Generic[M, T, R]):
    """One device's delivery order. `handle` is the only entry; it never raises for a stale result."""

    def __init__(
        self,
        *,
        outbox_empty: bool = True,
        chunk: int = 50,
        store_retry: float = 5.0,
        slow_hub_retry: float = 10.0,
    ) -> None:
        self.connected = False
        self.outbox_empty = outbox_empty  # known empty; when unknown, assume rows (a replay finds out)
        self.closed = False
        self.pending: deque[Batch[M, T]] = deque()
        self.current: Batch[M, T] | None = None
        self.busy: Busy[M, T, R] | None = None
        self._retry_direct: Publish[M, T] | None = None  # a lost direct publish, published again next
        self._replay: _Replay[R] = _Replay(wanted=not outbox_empty)
        self._replay_turn = False  # a new batch and the replay's next chunk take turns
        self._chunk = chunk
        self._store_retry = store_retry
        self._slow_hub_retry = slow_hub_retry

    @property
    def idle(self) -> bool:
        """Nothing under way or waiting: a new single message may be published straight away."""
        return self.busy is None and self.current is None and not self.pending

    @property
    def waiting(self) -> int:
        return len(self.pending)

    @property
    def replay_wanted(self) -> bool:
        return self._replay.wanted

    @property
    def loaded(self) -> int:
        """Outbox rows loaded for the replay and not sent yet."""
        return len(self._replay.rows)

    @property
    def unremoved(self) -> tuple[int, ...]:
        return tuple(self._replay.unremoved)

    def handle(self, event: Event[M, T, R]) -> list[Action[M, T, R]]:
        actions: list[Action[M, T, R]] = []
        match event:
            case Published(action) if action is self.busy:  # the common case first: a PUBACK
                self.busy = None
                self._message_done(action.batch, actions)
            case Arrived(batch):
                self._arrived(batch, actions)
            case Started(outbox_empty):
                self.outbox_empty = outbox_empty
                self._want_replay()
            case SessionUp():
                self.connected = True
                self._want_replay()
            case SessionDown():
                self.connected = False
            case ReplayDue():
                self._replay.paced = False
                self._want_replay()
            case Close(error):
                self._close(error, actions)
            case _:
                self._result(event, actions)
        if not self.closed:
            self._advance(actions)
        return actions

    # -- arrivals and results ------------------------------------------------------------------------

    def _arrived(self, batch: Batch[M, T], actions: list[Action[M, T, R]]) -> None:
        if self.closed:
            return  # the shell refuses before it asks; nothing is kept of a closed life
        if (
            batch.direct
            and self.busy is None
            and self.current is None
            and not self.pending
            and self.connected
            and self.outbox_empty
            and len(batch.messages) == 1
        ):
            self.current = batch
            self.busy = publish = Publish(batch, batch.messages[0], direct=True)
            actions.append(publish)
            return
        self.pending.append(batch)

    def _result(self, event: Event[M, T, R], actions: list[Action[M, T, R]]) -> None:
        action = getattr(event, "action", None)
        if action is None or action is not self.busy:
            return  # stale: its deadline passed, or the life closed, before it was answered
        self.busy = None
        match event:
            case Published(Publish(batch=batch)):
                self._message_done(batch, actions)
            case NotPublished(Publish(direct=True) as publish, timed_out=False):
                self._retry_direct = publish  # lost on the way: publish it again (or keep it)
            case NotPublished(Publish() as publish) | Paced(Publish() as publish):
                # Not acknowledged in time, a publish that already had its own retries, or one the pacers
                # would hold past its time: keep it (the replay sends it, at the rate).
                self.busy = keep = Keep(publish.batch, publish.message)
                actions.append(keep)
            case DirectRefused(Publish() as publish):
                self._retry_direct = publish
            case Paced(SendRow(), wait):
                self._stop_replay(Pause.PACED, actions, wait)
            case Kept(Keep(batch=batch)):
                self.outbox_empty = False
                batch.kept = True
                if self.connected:
                    self._want_replay()  # the hub answered late: replay soon
                self._message_done(batch, actions)
            case NotKept(Keep(batch=batch), error):
                self._answer(Refuse(batch, error), actions)
                self.current = None
                self._replay_turn = True
            case Loaded(_, rows):
                if rows:
                    self._replay.rows.extend(rows)
                else:
                    self.outbox_empty = True
                    self._replay.wanted = False
            case NotLoaded() | NotRemoved():
                self._pause(Pause.STORE, actions)
            case RowSent(SendRow(row=row)):
                self._replay.unremoved.append(row.sequence)
                self._replay.sent += 1
            case RowNotSent():
                # Connected but not acknowledged (a slow hub): try again later even if the device sends
                # nothing new and the connection stays up.
                self._stop_replay(Pause.SLOW_HUB, actions)
            case Removed(Remove(sequences=sequences)):
                done = self._replay.unremoved
                self._replay.unremoved = done[len(sequences) :]
                if self._replay.sent:
                    actions.append(Replayed(self._replay.sent))
                    self._replay.sent = 0

    def _message_done(self, batch: Batch[M, T], actions: list[Action[M, T, R]]) -> None:
        batch.done += 1
        if batch.done == len(batch.messages):
            self._answer(Acknowledge(batch, batch.kept), actions)
            if self.current is batch:
                self.current = None
                self._replay_turn = True

    def _stop_replay(self, why: Pause, actions: list[Action[M, T, R]], delay: float | None = None) -> None:
        """Pause the replay, removing what went out first."""
        self._pause(why, actions, delay)
        if self._replay.unremoved:
            self.busy = remove = Remove(tuple(self._replay.unremoved))
            actions.append(remove)

    def _want_replay(self) -> None:
        if not self.outbox_empty and not self._replay.paced:
            self._replay.wanted = True

    def _pause(self, why: Pause, actions: list[Action[M, T, R]], delay: float | None = None) -> None:
        self._replay.rows.clear()  # they stay in the outbox; the next replay loads them again
        self._replay.wanted = False
        self._replay.paced = why is Pause.PACED
        if delay is None:
            delay = self._slow_hub_retry if why is Pause.SLOW_HUB else self._store_retry
        actions.append(ReplayIn(delay, why))

    def _answer(self, answer: Acknowledge[M, T] | Refuse[M, T], actions: list[Action[M, T, R]]) -> None:
        if not answer.batch.answered:
            answer.batch.answered = True
            actions.append(answer)

    def _close(self, error: BaseException, actions: list[Action[M, T, R]]) -> None:
        self.closed = True
        self.busy = None
        self._retry_direct = None
        if self.current is not None:
            self._answer(Refuse(self.current, error), actions)
            self.current = None
        while self.pending:
            self._answer(Refuse(self.pending.popleft(), error), actions)
        self._replay = _Replay()

    # -- what comes next -----------------------------------------------------------------------------

    def _may_publish(self) -> bool:
        return self.connected and self.outbox_empty

    def _advance(self, actions: list[Action[M, T, R]]) -> None:
        """Start the next I/O when none is in flight (see the order in the module's docstring)."""
        while self.busy is None:
            step = self._next_step()
            if step is None:
                return
            self.busy = step
            actions.append(step)

    def _next_step(self) -> Busy[M, T, R] | None:
        retry, self._retry_direct = self._retry_direct, None
        if retry is not None:
            if self._may_publish():
                return Publish(retry.batch, retry.message, direct=False)
            return Keep(retry.batch, retry.message)
        batch = self.current
        if batch is not None:
            return self._deliver(batch, batch.messages[batch.done])
        replay = self._replay
        if replay.rows and not self.connected:
            replay.rows.clear()  # they stay in the outbox; the next replay loads them again
        if replay.unremoved and replay.wanted and not replay.rows:
            return Remove(tuple(replay.unremoved))
        may_replay = replay.wanted and self.connected
        if self.pending and not (may_replay and self._replay_turn):
            self.current = batch = self.pending.popleft()
            self._replay_turn = False
            return self._deliver(batch, batch.messages[0])
        if replay.rows:
            self._replay_turn = False  # one row, then a batch waiting gets its turn
            return SendRow(replay.rows.popleft())
        if may_replay:
            self._replay_turn = True  # the chunk's first row comes next, whatever arrives meanwhile
            return Load(self._chunk)
        return None

    def _deliver(self, batch: Batch[M, T], message: M) -> Busy[M, T, R]:
        if self._may_publish():
            return Publish(batch, message, direct=False)
        return Keep(batch, message)
