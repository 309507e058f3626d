"""The delivery order (translator/bridge/ordering.py), one interleaving at a time: the ones the end-to-end
tests reach over real sockets (test_acknowledged, test_store_faults, test_resilience) and the ones they only
reach by luck. No socket, no event loop: events in, actions out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    Pause,
    Publish,
    Published,
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
)


@dataclass(frozen=True)
class Row:
    sequence: int
    message: str


Order = DeliveryOrder[str, str, Row]


def connected() -> Order:
    order: Order = DeliveryOrder(chunk=2, store_retry=5.0, slow_hub_retry=10.0)
    assert order.handle(SessionUp()) == []
    return order


def batch(*messages: str, direct: bool = True) -> Batch[str, str]:
    return Batch(tuple(messages), "+".join(messages), direct=direct)


def only(actions: Sequence[object], kind: type) -> object:
    matching = [a for a in actions if isinstance(a, kind)]
    assert len(matching) == 1, actions
    return matching[0]


def published(order: Order, b: Batch[str, str]) -> Publish[str, str]:
    """The batch arrives and is published at once (its only action)."""
    [publish] = order.handle(Arrived(b))
    assert isinstance(publish, Publish), publish
    return publish


def replaying(*, chunk: int = 50, **options: float) -> tuple[Order, Load]:
    """A device with rows in its outbox, just connected: its first action loads them."""
    order: Order = DeliveryOrder(outbox_empty=False, chunk=chunk, **options)
    [load] = order.handle(SessionUp())
    assert isinstance(load, Load), load
    return order, load


def first_row(order: Order, load: Load, *rows: Row) -> SendRow[Row]:
    """The loaded rows come back; the replay sends the first."""
    [send] = order.handle(Loaded(load, list(rows)))
    assert isinstance(send, SendRow), send
    assert send.row == rows[0]
    return send


def test_a_lone_message_of_an_idle_device_is_published_directly_and_acknowledged_on_its_puback() -> None:
    order = connected()
    b = batch("a")
    [publish] = order.handle(Arrived(b))
    assert isinstance(publish, Publish) and publish.direct and publish.message == "a"
    assert order.handle(Published(publish)) == [Acknowledge(b, kept=False)]
    assert order.idle


def test_a_message_that_waited_is_never_published_directly() -> None:
    order = connected()
    [publish] = order.handle(Arrived(batch("a", direct=False)))
    assert isinstance(publish, Publish) and not publish.direct


def test_a_direct_publish_past_its_deadline_is_kept_and_its_late_puback_ignored() -> None:
    order = connected()
    b = batch("a")
    publish = published(order, b)
    [keep] = order.handle(NotPublished(publish, timed_out=True))
    assert isinstance(keep, Keep) and keep.message == "a"
    assert order.handle(Published(publish)) == []  # the late PUBACK: neither an answer nor a step
    actions = order.handle(Kept(keep))
    assert actions[0] == Acknowledge(b, kept=True)
    assert isinstance(actions[1], Load)  # kept while connected: the replay comes soon


def test_a_lost_direct_publish_is_published_again_before_anything_newer() -> None:
    order = connected()
    first, second = batch("a"), batch("b")
    publish = published(order, first)
    assert order.handle(Arrived(second)) == []  # waits: "a" is still on its way
    [again] = order.handle(NotPublished(publish, timed_out=False))
    assert isinstance(again, Publish) and again.message == "a" and not again.direct
    actions = order.handle(Published(again))
    assert actions[0] == Acknowledge(first, kept=False)
    assert isinstance(actions[1], Publish) and actions[1].message == "b"


def test_a_lost_direct_publish_is_kept_when_the_session_went_down_meanwhile() -> None:
    order = connected()
    publish = published(order, batch("a"))
    order.handle(SessionDown())
    [keep] = order.handle(NotPublished(publish, timed_out=False))
    assert isinstance(keep, Keep)


def test_a_direct_publish_the_session_cannot_take_goes_the_ordinary_way() -> None:
    order = connected()
    publish = published(order, batch("a"))
    [again] = order.handle(DirectRefused(publish))
    assert isinstance(again, Publish) and not again.direct and again.message == "a"


def test_an_ordinary_publish_that_fails_is_kept() -> None:
    order = connected()
    [publish] = order.handle(Arrived(batch("a", "b")))
    assert isinstance(publish, Publish) and not publish.direct
    [keep] = order.handle(NotPublished(publish, timed_out=True))
    assert isinstance(keep, Keep) and keep.message == "a"


def test_a_batch_is_acknowledged_as_kept_when_any_of_it_was_kept() -> None:
    order = connected()
    b = batch("a", "b")
    publish = published(order, b)
    [keep] = order.handle(NotPublished(publish, timed_out=True))
    assert isinstance(keep, Keep)
    [next_one, load] = [a for a in order.handle(Kept(keep)) if not isinstance(a, Acknowledge)] + [None]
    # "b" is kept too (the outbox holds "a" now: nothing may overtake it), then the batch is answered.
    assert isinstance(next_one, Keep) and next_one.message == "b" and load is None
    assert only(order.handle(Kept(next_one)), Acknowledge) == Acknowledge(b, kept=True)


def test_while_disconnected_telemetry_is_kept_and_replayed_before_anything_newer() -> None:
    order: Order = DeliveryOrder(chunk=2)
    old = batch("a")
    [keep] = order.handle(Arrived(old))
    assert isinstance(keep, Keep)  # no session: kept
    assert order.handle(Kept(keep)) == [Acknowledge(old, kept=True)]
    [load] = order.handle(SessionUp())
    assert isinstance(load, Load)
    new = batch("b")
    assert order.handle(Arrived(new)) == []  # not published directly: the outbox holds an older row
    send = first_row(order, load, Row(1, "a"))
    [remove] = order.handle(RowSent(send))
    assert remove == Remove((1,)) or (isinstance(remove, Remove) and remove.sequences == (1,))
    actions = order.handle(Removed(remove))
    assert actions[0] == Replayed(1)
    # The new batch's turn: the outbox is not known empty yet, so "b" goes behind "a" in it.
    assert isinstance(actions[1], Keep) and actions[1].message == "b"


def test_once_the_outbox_is_found_empty_telemetry_is_published_again() -> None:
    order, load = replaying()
    assert order.handle(Loaded(load, [])) == []
    assert order.outbox_empty and order.idle
    [publish] = order.handle(Arrived(batch("a")))
    assert isinstance(publish, Publish) and publish.direct


def test_a_device_started_with_rows_in_its_outbox_replays_them_once_connected() -> None:
    order: Order = DeliveryOrder()
    assert order.handle(Started(outbox_empty=False)) == []
    [load] = order.handle(SessionUp())
    assert isinstance(load, Load)


def test_a_store_failure_refuses_one_batch_and_delivery_goes_on() -> None:
    order: Order = DeliveryOrder()
    first, second = batch("a"), batch("b")
    [keep] = order.handle(Arrived(first))
    assert isinstance(keep, Keep)
    order.handle(Arrived(second))
    failure = OSError("read-only")
    actions = order.handle(NotKept(keep, failure))
    assert actions[0] == Refuse(first, failure)
    assert isinstance(actions[1], Keep) and actions[1].message == "b"
    assert order.handle(Kept(actions[1])) == [Acknowledge(second, kept=True)]


def test_an_unreadable_outbox_pauses_the_replay_until_it_is_due() -> None:
    order, load = replaying(store_retry=5.0)
    assert order.handle(NotLoaded(load)) == [ReplayIn(5.0, Pause.STORE)]
    assert order.busy is None
    [again] = order.handle(ReplayDue())
    assert isinstance(again, Load)


def test_a_failing_removal_pauses_the_replay_and_nothing_is_sent_twice() -> None:
    order, load = replaying(chunk=1)
    send = first_row(order, load, Row(7, "a"))
    [remove] = order.handle(RowSent(send))
    assert isinstance(remove, Remove)
    assert order.handle(NotRemoved(remove)) == [ReplayIn(5.0, Pause.STORE)]
    assert order.handle(SessionDown()) == []
    [again] = order.handle(SessionUp())  # the removal comes first, before any row is loaded again
    assert isinstance(again, Remove) and again.sequences == (7,)
    replayed, reload = order.handle(Removed(again))
    assert replayed == Replayed(1) and isinstance(reload, Load)


def test_a_slow_hub_pauses_the_replay_after_removing_what_went_out() -> None:
    order, load = replaying(chunk=2, slow_hub_retry=10.0)
    send = first_row(order, load, Row(1, "a"), Row(2, "b"))
    [send2] = order.handle(RowSent(send))
    assert isinstance(send2, SendRow) and send2.row.sequence == 2
    pause, remove = order.handle(RowNotSent(send2))
    assert pause == ReplayIn(10.0, Pause.SLOW_HUB)
    assert isinstance(remove, Remove) and remove.sequences == (1,)
    assert order.handle(Removed(remove)) == [Replayed(1)]  # paused: nothing more until it is due
    [reload] = order.handle(ReplayDue())
    assert isinstance(reload, Load)


def test_a_session_lost_in_the_middle_of_a_replay_stops_it_and_removes_what_went_out() -> None:
    order, load = replaying(chunk=3)
    send = first_row(order, load, Row(1, "a"), Row(2, "b"), Row(3, "c"))
    order.handle(SessionDown())
    [remove] = order.handle(RowSent(send))
    assert isinstance(remove, Remove) and remove.sequences == (1,)
    assert order.handle(Removed(remove)) == [Replayed(1)]
    [reload] = order.handle(SessionUp())  # rows 2 and 3 are loaded again, not lost
    assert isinstance(reload, Load)


def test_new_batches_and_the_replay_take_turns() -> None:
    order, load = replaying(chunk=1)
    b1, b2 = batch("x"), batch("y")
    order.handle(Arrived(b1))
    order.handle(Arrived(b2))
    send = first_row(order, load, Row(1, "a"))
    [remove] = order.handle(RowSent(send))
    assert isinstance(remove, Remove)
    keep_x = order.handle(Removed(remove))[1]
    assert isinstance(keep_x, Keep) and keep_x.message == "x"  # a batch's turn
    acknowledge, reload = order.handle(Kept(keep_x))
    assert acknowledge == Acknowledge(b1, kept=True) and isinstance(reload, Load)  # then the replay's


def test_close_refuses_everything_unanswered_and_ignores_late_results() -> None:
    order = connected()
    first, second = batch("a"), batch("b")
    publish = published(order, first)
    order.handle(Arrived(second))
    closing = ConnectionError("closing")
    assert order.handle(Close(closing)) == [Refuse(first, closing), Refuse(second, closing)]
    assert order.handle(Published(publish)) == []
    assert order.handle(Arrived(batch("c"))) == []
    assert order.handle(ReplayDue()) == []


def test_a_publish_the_pacers_would_hold_past_its_time_is_kept_and_acknowledged_once_committed() -> None:
    order = connected()
    b = batch("a", direct=False)
    publish = published(order, b)
    [keep] = order.handle(Paced(publish, 7.0))
    assert isinstance(keep, Keep) and keep.message == "a"
    assert order.handle(Published(publish)) == []  # a stale answer changes nothing
    acknowledge, load = order.handle(Kept(keep))
    assert acknowledge == Acknowledge(b, kept=True)  # 2.04 only now: the row is committed
    assert isinstance(load, Load)  # and the replay sends it, at the pacers' rate


def test_a_paced_publish_the_outbox_cannot_take_is_refused_with_the_outbox_s_error() -> None:
    order = connected()
    b = batch("a", direct=False)
    publish = published(order, b)
    [keep] = order.handle(Paced(publish, 7.0))
    assert isinstance(keep, Keep)
    full = OSError("outbox full")  # the shell's BackPressure with Max-Age: 5.03 at the CoAP face
    assert order.handle(NotKept(keep, full)) == [Refuse(b, full)]


def test_a_paced_replay_row_pauses_the_replay_for_the_wait_and_new_batches_are_kept_behind_it() -> None:
    order, load = replaying(chunk=2)
    send = first_row(order, load, Row(1, "a"), Row(2, "b"))
    [send2] = order.handle(RowSent(send))
    assert isinstance(send2, SendRow) and send2.row.sequence == 2
    pause, remove = order.handle(Paced(send2, 3.0))
    assert pause == ReplayIn(3.0, Pause.PACED)
    assert isinstance(remove, Remove) and remove.sequences == (1,)  # what went out leaves the outbox
    assert order.handle(Removed(remove)) == [Replayed(1)]
    new = batch("c")
    [keep] = order.handle(Arrived(new))
    assert isinstance(keep, Keep)  # behind "b" in the outbox, not published ahead of it
    # Neither the keep nor the session coming up again cut the pacers' pause short ...
    assert order.handle(Kept(keep)) == [Acknowledge(new, kept=True)]
    order.handle(SessionDown())
    assert order.handle(SessionUp()) == []
    # ... it goes on when it is due.
    [reload] = order.handle(ReplayDue())
    assert isinstance(reload, Load)


def test_the_replay_yields_to_new_batches_row_by_row() -> None:
    order, load = replaying(chunk=3)
    send = first_row(order, load, Row(1, "a"), Row(2, "b"), Row(3, "c"))
    x, y = batch("x"), batch("y")
    assert order.handle(Arrived(x)) == [] and order.handle(Arrived(y)) == []
    # A row may wait for the pacers: a new batch waits for one row at most, not for the chunk ...
    [keep_x] = order.handle(RowSent(send))
    assert isinstance(keep_x, Keep) and keep_x.message == "x"
    acknowledge, after = order.handle(Kept(keep_x))
    assert acknowledge == Acknowledge(x, kept=True)
    # ... and the replay is not starved by new batches either: they take turns.
    assert isinstance(after, SendRow) and after.row.sequence == 2
    [keep_y] = order.handle(RowSent(after))
    assert isinstance(keep_y, Keep) and keep_y.message == "y"
    acknowledge, after = order.handle(Kept(keep_y))
    assert acknowledge == Acknowledge(y, kept=True)
    assert isinstance(after, SendRow) and after.row.sequence == 3
    [remove] = order.handle(RowSent(after))
    assert isinstance(remove, Remove) and remove.sequences == (1, 2, 3)
    replayed, reload = order.handle(Removed(remove))
    assert replayed == Replayed(3) and isinstance(reload, Load)  # x and y next, in order
