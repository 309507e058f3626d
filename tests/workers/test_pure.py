"""The supervisor's decisions and the workers' metrics, without processes: the restart policy, each worker's
settings, the lines between supervisor and worker, and the sum of the workers' expositions."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.ops.metrics import Metrics
from translator.settings import Settings, SettingsError, load_settings
from translator.workers.metrics import labelled, render, summed
from translator.workers.plan import RestartPolicy, SharedPorts, worker_settings
from translator.workers.protocol import WorkerOrder, WorkerReady, WorkerTemplate, decode_line

REDIS = "redis://127.0.0.1:6379/0"


def test_more_than_one_worker_needs_redis() -> None:
    with pytest.raises(SettingsError, match=r"more than one worker needs store\.redis_url"):
        load_settings(environ={}, overrides={"workers": 2})
    assert load_settings(environ={}, overrides={"workers": 2, "store.redis_url": REDIS}).workers == 2
    assert load_settings(environ={"IOTC_TRANSLATOR_WORKERS": "1"}).workers == 1


def test_a_worker_that_keeps_dying_is_given_up_a_stable_one_is_restarted_at_once() -> None:
    policy = RestartPolicy(base=0.5, cap=4.0, stable_after=30.0, max_deaths=4)
    deaths, delays = 0, []
    for _ in range(4):
        deaths, delay = policy.after_death(deaths, ran_for=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0]
    assert policy.after_death(deaths, ran_for=1.0) == (5, None)  # the fifth quick death: give up
    assert policy.after_death(deaths, ran_for=31.0) == (1, 0.5)  # it had lived: a fresh start
    assert RestartPolicy(cap=3.0).after_death(9, ran_for=0.0)[1] is None


def test_each_worker_gets_the_shared_ports_a_private_operations_port_and_its_own_node() -> None:
    settings = load_settings(environ={}, overrides={"workers": 3, "store.redis_url": REDIS})
    ports = SharedPorts(5683, 5684, 8090)
    first = worker_settings(settings, 0, ports, "host-1-abc")
    again = worker_settings(settings, 0, ports, "host-1-abc")
    second = worker_settings(settings, 1, ports, "host-1-abc")
    assert (first.coap.port, first.coap.dtls_port, first.http.port) == (5683, 5684, 8090)
    assert first.store.node_id == again.store.node_id == "host-1-abc-w0"  # the same across restarts
    assert second.store.node_id == "host-1-abc-w1"
    assert (first.operations.host, first.operations.port) == ("127.0.0.1", 0)
    assert first.workers == 1 and first.store.redis_url == REDIS
    # The quotas stay whole in the settings: each worker shares them among the live nodes at run time
    # (translator/cluster/quota_share.py), never above 1/workers (its order says how many).
    assert first.iotc == settings.iotc


def test_the_order_carries_the_settings_whole(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"IOTC_TRANSLATOR_IOTC_GROUP_KEY": "a2V5", "IOTC_TRANSLATOR_IOTC_ID_SCOPE": "0ne1"},
        overrides={"workers": 2, "store.redis_url": REDIS, "state_dir": str(tmp_path)},
    )
    order = WorkerOrder(1, settings, None, workers=2)
    line = order.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = WorkerOrder.decode(line)
    assert decoded == order and decoded.workers == 2
    assert isinstance(decoded.settings, Settings) and decoded.settings.iotc.group_key == "a2V5"
    emulated = WorkerOrder(0, settings, settings.iotc)
    assert WorkerOrder.decode(emulated.encode()).emulated == settings.iotc


def test_a_worker_says_ready_or_a_template_and_nothing_else_passes() -> None:
    ready = WorkerReady(pid=7, coap_port=5683, operations_port=40000, dtls_port=5684)
    assert decode_line(ready.encode()) == ready
    template = WorkerTemplate("dtmi:x:y;1", [{"@id": "dtmi:x:y;1"}])
    assert decode_line(template.encode()) == template
    for junk in (b"", b"hello\n", b'{"ready": {"pid": 1}}\n', b'{"template": {}}\n', b"[1]\n"):
        with pytest.raises(ValueError):
            decode_line(junk)


def _exposition(sends: int, sessions: int, outbox: int) -> str:
    metrics = Metrics()
    metrics.messages_in.labels(source="send").inc(sends)
    metrics.commands.labels(outcome="ok").observe(0.2)
    metrics.add_callback(
        lambda: {
            "iotc_translator_sessions": {("connected",): float(sessions)},
            "iotc_translator_outbox_depth": {(): float(outbox)},
        },
        {"iotc_translator_sessions": ["state"]},
    )
    return metrics.render().decode()


def test_the_workers_metrics_are_summed_but_the_shared_outbox_is_not() -> None:
    text = render(summed([_exposition(3, 2, 40), _exposition(4, 5, 42)])).decode()
    assert 'iotc_translator_messages_in_total{source="send"} 7.0' in text
    assert 'iotc_translator_sessions{state="connected"} 7.0' in text
    assert 'iotc_translator_command_seconds_count{outcome="ok"} 2.0' in text
    assert "iotc_translator_outbox_depth 42.0" in text  # one Redis outbox, seen by both
    assert "_created" not in text
    assert text.count("# TYPE iotc_translator_messages_in_total counter") == 1


def test_the_per_worker_view_labels_every_series_with_its_worker() -> None:
    text = render(labelled({0: _exposition(3, 2, 40), 1: _exposition(4, 5, 42)})).decode()
    assert 'iotc_translator_messages_in_total{source="send",worker="0"} 3.0' in text
    assert 'iotc_translator_messages_in_total{source="send",worker="1"} 4.0' in text
    assert 'iotc_translator_outbox_depth{worker="1"} 42.0' in text
