"""The delivery order against a model of the world: hypothesis drives every interleaving of arrivals,
sessions coming and going, PUBACKs lost before or after the hub got the message, deadlines passing, the
outbox refusing writes, reads and removals, and replay timers — and checks the promise after every step:

- never acknowledged and lost: every message the device was told is safe is at the hub or in the outbox;
- no reordering: the first arrival of each message at the hub comes in the order the device sent them;
- duplicates only after a publish whose PUBACK was lost (the hub had it, the translator never heard so);
- one answer per batch, at most one I/O in flight;
- fairness between the replay and new batches: while batches wait, the replay sends at most one row before
  a batch gets its turn, and while rows are loaded at most one batch starts before a row goes (a row or a
  publish the pacers would hold too long is answered `Paced`);
- and, once the world behaves, everything drains: every batch answered, the outbox empty, every
  acknowledged message at the hub.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from translator.bridge.ordering import DeliveryOrder
from translator.bridge.ordering_events import (
    Acknowledge,
    Arrived,
    Batch,
    Close,
    DirectRefused,
    Keep,
    Kept,
    Load,
    Loaded,
    NotKept,
    NotLoaded,
    NotPublished,
    NotRemoved,
    Paced,
    Publish,
    Published,
    Refuse,
    Remove,
    Removed,
    ReplayDue,
    ReplayIn,
    RowNotSent,
    RowSent,
    SendRow,
    SessionDown,
    SessionUp,
    Started,
)


@dataclass(frozen=True)
class Row:
    sequence: int
    message: int


IO = (Publish, Keep, Load, SendRow, Remove)


class DeliveryWorld(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.order: DeliveryOrder[int, int, Row] = DeliveryOrder(
            chunk=3, store_retry=5.0, slow_hub_retry=10.0
        )
        self.hub: list[int] = []
        self.outbox: dict[int, int] = {}  # sequence → message
        self.sequence = 0
        self.sent = 0  # messages the device sent so far (their values are 0, 1, 2, ...)
        self.batches: dict[int, Batch[int, int]] = {}
        self.answers: dict[int, str] = {}
        self.acknowledged: set[int] = set()
        self.lost_pubacks = 0
        self.timer = False
        self.closed = False
        self.rows_while_batches_wait = 0  # rows sent since a batch last got its turn, while batches waited
        self.batches_while_rows_wait = 0  # batches started since a row last went, while rows were loaded
        self.before: tuple[int, int, object] = (0, 0, None)

    # -- applying the order's actions ---------------------------------------------------------------

    def apply(self, actions: list[object]) -> None:
        io = [a for a in actions if isinstance(a, IO)]
        assert len(io) <= 1, actions
        if io:
            assert io[0] is self.order.busy
            self.count_turns(io[0])
        for action in actions:
            if isinstance(action, Acknowledge | Refuse):
                key = action.batch.tag
                assert key not in self.answers, f"batch {key} answered twice"
                if isinstance(action, Acknowledge):
                    self.answers[key] = "acknowledged"
                    self.acknowledged.update(action.batch.messages)
                else:
                    self.answers[key] = "refused"
            elif isinstance(action, ReplayIn):
                self.timer = True

    def handle(self, event: object) -> None:
        waiting, loaded, current = self.order.waiting, self.order.loaded, self.order.current
        self.before = (waiting, loaded, current)
        self.apply(self.order.handle(event))  # type: ignore[arg-type]

    def count_turns(self, io: object) -> None:
        waiting, loaded, current = self.before
        if isinstance(io, SendRow):
            self.batches_while_rows_wait = 0
            if waiting:
                self.rows_while_batches_wait += 1
        elif self.order.current is not None and self.order.current is not current:
            self.rows_while_batches_wait = 0  # a batch's turn came
            if loaded and self.order.connected:
                self.batches_while_rows_wait += 1

    def keep(self, message: int) -> None:
        self.sequence += 1
        self.outbox[self.sequence] = message

    # -- the world's moves -------------------------------------------------------------------------

    @precondition(lambda self: not self.closed)
    @rule(size=st.integers(1, 3), waited=st.booleans())
    def arrive(self, size: int, waited: bool) -> None:
        messages = tuple(range(self.sent, self.sent + size))
        self.sent += size
        batch = Batch(messages, len(self.batches), direct=not waited)
        self.batches[batch.tag] = batch
        self.handle(Arrived(batch))

    @rule()
    def session_up(self) -> None:
        self.handle(SessionUp())

    @rule()
    def session_down(self) -> None:
        self.handle(SessionDown())

    @precondition(lambda self: self.timer)
    @rule()
    def replay_due(self) -> None:
        self.timer = False
        self.handle(ReplayDue())

    @rule(outbox_empty=st.booleans())
    def started(self, outbox_empty: bool) -> None:
        self.handle(Started(outbox_empty=outbox_empty and not self.outbox))

    @precondition(lambda self: not self.closed)
    @rule(chance=st.integers(0, 9))
    def close(self, chance: int) -> None:
        if chance == 0:  # rarely: a closed life ends the run's interest
            self.closed = True
            self.handle(Close(ConnectionError("closing")))

    @precondition(lambda self: self.order.busy is not None)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        busy = self.order.busy
        if isinstance(busy, Publish):
            choices = ["puback", "lost_after_hub", "deadline_hub_had_it", "deadline", "paced"]
            if busy.direct:
                choices += ["lost", "refused"]
            self.answer_publish(busy, data.draw(st.sampled_from(choices)))
        elif isinstance(busy, Keep):
            self.answer_keep(busy, data.draw(st.booleans()))
        elif isinstance(busy, Load):
            self.answer_load(busy, data.draw(st.booleans()))
        elif isinstance(busy, SendRow):
            self.answer_row(busy, data.draw(st.sampled_from(["puback", "lost", "lost_after_hub", "paced"])))
        elif isinstance(busy, Remove):
            self.answer_remove(busy, data.draw(st.booleans()))

    def answer_publish(self, action: Publish[int, int], how: str) -> None:
        if how in ("puback", "lost_after_hub", "deadline_hub_had_it"):
            self.hub.append(action.message)
        if how in ("lost_after_hub", "deadline_hub_had_it"):
            self.lost_pubacks += 1
        if how == "puback":
            self.handle(Published(action))
        elif how == "paced":
            self.handle(Paced(action, 3.0))
        elif how == "refused":
            self.handle(DirectRefused(action))
        elif how in ("lost", "lost_after_hub") and action.direct:
            self.handle(NotPublished(action, timed_out=False))
        else:
            self.handle(NotPublished(action, timed_out=True))
            if how == "deadline_hub_had_it":
                self.handle(Published(action))  # the late PUBACK: ignored

    def answer_keep(self, action: Keep[int, int], ok: bool) -> None:
        if ok:
            self.keep(action.message)
            self.handle(Kept(action))
        else:
            self.handle(NotKept(action, OSError("read-only")))

    def answer_load(self, action: Load, ok: bool) -> None:
        if ok:
            rows = [Row(s, self.outbox[s]) for s in sorted(self.outbox)[: action.limit]]
            self.handle(Loaded(action, rows))
        else:
            self.handle(NotLoaded(action))

    def answer_row(self, action: SendRow[Row], how: str) -> None:
        if how == "paced":
            self.handle(Paced(action, 3.0))  # not sent at all
            return
        if how != "lost":
            self.hub.append(action.row.message)
        if how == "lost_after_hub":
            self.lost_pubacks += 1
        self.handle(RowSent(action) if how == "puback" else RowNotSent(action))

    def answer_remove(self, action: Remove, ok: bool) -> None:
        if ok:
            for sequence in action.sequences:
                del self.outbox[sequence]
            self.handle(Removed(action))
        else:
            self.handle(NotRemoved(action))

    # -- the promise -------------------------------------------------------------------------------

    @invariant()
    def nothing_acknowledged_is_lost(self) -> None:
        safe = set(self.hub) | set(self.outbox.values())
        assert self.acknowledged <= safe, sorted(self.acknowledged - safe)

    @invariant()
    def the_hub_gets_messages_in_order(self) -> None:
        seen: set[int] = set()
        firsts = [m for m in self.hub if not (m in seen or seen.add(m))]  # type: ignore[func-returns-value]
        assert firsts == sorted(firsts), self.hub

    @invariant()
    def duplicates_only_after_a_lost_puback(self) -> None:
        assert len(self.hub) - len(set(self.hub)) <= self.lost_pubacks, self.hub

    @invariant()
    def the_outbox_is_in_order(self) -> None:
        rows = [self.outbox[s] for s in sorted(self.outbox)]
        assert rows == sorted(rows), rows

    @invariant()
    def the_replay_and_new_batches_take_turns(self) -> None:
        assert self.rows_while_batches_wait <= 1
        assert self.batches_while_rows_wait <= 1

    @invariant()
    def a_closed_life_answered_every_batch(self) -> None:
        if self.closed:
            assert set(self.answers) == set(self.batches)

    @rule()
    def everything_drains_once_the_world_behaves(self) -> None:
        if self.closed:
            return
        self.handle(SessionUp())
        for _ in range(1000):
            busy = self.order.busy
            if isinstance(busy, Publish):
                self.answer_publish(busy, "puback")
            elif isinstance(busy, Keep):
                self.answer_keep(busy, True)
            elif isinstance(busy, Load):
                self.answer_load(busy, True)
            elif isinstance(busy, SendRow):
                self.answer_row(busy, "puback")
            elif isinstance(busy, Remove):
                self.answer_remove(busy, True)
            elif self.timer:
                self.replay_due()
            else:
                break
        else:
            raise AssertionError("the order never came to rest")
        assert set(self.answers) == set(self.batches), "a batch was never answered"
        assert not self.outbox, f"rows left in the outbox: {self.outbox}"
        assert self.acknowledged <= set(self.hub)
        assert self.order.idle and self.order.outbox_empty


TestDeliveryWorld = DeliveryWorld.TestCase
TestDeliveryWorld.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
