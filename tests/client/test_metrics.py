"""Metrics: float values (NaN and infinities kept), default steps and timestamps, the
latest value, and the background batcher (queue, flush, exit, errors)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

import cairn
from cairn import MetricPoint

from .conftest import MakeClient, MakeSettings, expect_error

SLOW_FLUSH = 120.0  # seconds: nothing is written unless something asks for it


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def steps_and_values(points: list[MetricPoint]) -> list[tuple[int, float]]:
    return [(p.step, p.value) for p in points]


# -- values -----------------------------------------------------------------------------


def test_log_and_read(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("loss", 0.5)
    run.log_metric("loss", 0.25)
    run.log_metrics({"loss": 0.125, "acc": 0.75})
    assert run.get_metric("loss") == 0.125
    assert run.get_metric("acc") == 0.75
    assert run.get_metrics() == {"loss": 0.125, "acc": 0.75}
    assert steps_and_values(run.get_metric_history("loss")) == [(0, 0.5), (1, 0.25), (2, 0.125)]
    assert steps_and_values(run.get_metric_history("acc")) == [(0, 0.75)]
    assert run.get_metric_history("never") == []
    with pytest.raises(cairn.NotFound, match="never"):
        run.get_metric("never")


def test_ints_are_stored_as_floats(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("count", 3)
    run.log_metrics({"other": 4})
    assert type(run.get_metric("count")) is float
    assert run.get_metric("count") == 3.0
    [point] = run.get_metric_history("other")
    assert type(point.value) is float
    assert point.value == 4.0


def test_numpy_values_are_accepted(client: cairn.Client) -> None:
    np = pytest.importorskip("numpy")
    run = client.set_experiment_run("r")
    run.log_metric("a", np.float32(0.5), step=np.int64(2))
    run.log_metrics({"b": np.int32(3)})
    assert steps_and_values(run.get_metric_history("a")) == [(2, 0.5)]
    assert run.get_metric("b") == 3.0


def test_exact_float_values_round_trip(open_client: MakeClient) -> None:
    values = [0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 123456789.123456789]
    client = open_client()
    run = client.set_experiment_run("r")
    for value in values:
        run.log_metric("x", value)
    client.close()
    history = open_client().get_run(run.id).get_metric_history("x")
    assert [p.value for p in history] == values


def test_nan_and_infinities_are_kept(open_client: MakeClient) -> None:
    client = open_client()
    run = client.set_experiment_run("r")
    run.log_metric("x", 1.0)
    run.log_metric("x", math.nan)
    run.log_metric("x", math.inf)
    run.log_metric("x", -math.inf)
    run.log_metric("nan", 2.0)
    run.log_metric("nan", math.nan)
    run.log_metric("inf", math.inf)
    run.log_metric("-inf", -math.inf)
    client.close()

    run = open_client().get_run(run.id)
    values = [p.value for p in run.get_metric_history("x")]
    assert values[0] == 1.0
    assert math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf]
    assert run.get_metric("x") == -math.inf
    assert math.isnan(run.get_metric("nan"))
    assert run.get_metric("inf") == math.inf
    assert run.get_metric("-inf") == -math.inf
    latest = run.get_metrics_latest()
    assert latest["nan"].step == 1
    assert math.isnan(latest["nan"].value)


BAD_VALUES = ["0.5", None, True, False, [1.0], 1 + 2j, b"1", object()]


def test_bad_values_are_refused(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for value in BAD_VALUES:
        error = expect_error(cairn.InvalidArgument, value, run.log_metric, "loss", value)
        assert error.field == "metric 'loss'"
        assert str(error).startswith("metric 'loss': must be a number")
        error = expect_error(
            cairn.InvalidArgument, value, run.log_metrics, {"fine": 1.0, "bad": value}
        )
        assert error.field == "metric 'bad'"
    run.flush()
    assert run.get_metrics() == {}


def test_a_refused_batch_does_not_move_the_default_step(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument):
        run.log_metrics({"fine": 1.0, "bad": "x"})
    run.log_metric("fine", 2.0)
    assert steps_and_values(run.get_metric_history("fine")) == [(0, 2.0)]


BAD_OPTIONS = [
    ({"step": -1}, "step"),
    ({"step": 1.5}, "step"),
    ({"step": "3"}, "step"),
    ({"step": True}, "step"),
    ({"step": 2**63}, "step"),
    ({"timestamp": -5}, "timestamp"),
    ({"timestamp": 1.5}, "timestamp"),
    ({"timestamp": 2**63}, "timestamp"),
]


def test_bad_steps_and_timestamps(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for i, (options, field) in enumerate(BAD_OPTIONS):
        key = f"m{i}"
        error = expect_error(cairn.InvalidArgument, options, run.log_metric, key, 1.0, **options)
        assert error.field == field, options
        error = expect_error(cairn.InvalidArgument, options, run.log_metrics, {key: 1.0}, **options)
        assert error.field == field, options
    assert run.get_metrics() == {}
    run.log_metric("m0", 1.0)  # the refused points left nothing behind, not even a step
    assert steps_and_values(run.get_metric_history("m0")) == [(0, 1.0)]


def test_log_metrics_needs_a_mapping(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    with pytest.raises(cairn.InvalidArgument, match="metrics"):
        run.log_metrics([("loss", 1.0)])  # type: ignore[arg-type]


# -- steps and timestamps ---------------------------------------------------------------


def test_step_defaults_to_the_next_step_of_each_key(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("a", 1.0)
    run.log_metric("a", 2.0)
    run.log_metric("b", 3.0)
    run.log_metric("a", 4.0, step=10)
    run.log_metric("a", 5.0)
    run.log_metrics({"a": 6.0, "b": 7.0})
    run.log_metrics({"a": 8.0, "b": 9.0}, step=20)
    run.log_metrics({"a": 10.0, "b": 11.0})
    assert [p.step for p in run.get_metric_history("a")] == [0, 1, 10, 11, 12, 20, 21]
    assert [p.step for p in run.get_metric_history("b")] == [0, 1, 20, 21]


def test_step_continues_after_reopening(open_client: MakeClient) -> None:
    client = open_client()
    run = client.set_experiment_run("r")
    for value in (1.0, 2.0, 3.0):
        run.log_metric("loss", value)
    run.log_metric("other", 1.0, step=41)
    client.close()

    again = open_client().get_run(run.id)
    again.log_metric("loss", 4.0)
    again.log_metrics({"other": 2.0, "new": 1.0})
    assert [p.step for p in again.get_metric_history("loss")] == [0, 1, 2, 3]
    assert [p.step for p in again.get_metric_history("other")] == [41, 42]
    assert [p.step for p in again.get_metric_history("new")] == [0]


def test_step_continues_from_another_client(open_client: MakeClient) -> None:
    first = open_client().set_experiment_run("r")
    first.log_metric("loss", 1.0)
    first.flush()
    second = open_client().get_run(first.id)
    second.log_metric("loss", 2.0)
    assert [p.step for p in second.get_metric_history("loss")] == [0, 1]


def test_default_steps_of_an_existing_run_are_found_off_the_training_thread(
    open_client: MakeClient,
) -> None:
    """Logging to a run this client did not create asks the store for its highest step,
    on the writer thread: the logging calls return at once however slow the answer is,
    and the steps are those an immediate answer would give."""
    first = open_client()
    run = first.set_experiment_run("r")
    run.log_metrics({"loss": 1.0, "acc": 0.5})
    run.log_metric("loss", 2.0, step=7)
    first.close()

    client = open_client()
    metrics = client._backend.metrics
    real = metrics.get_latest_metrics
    asked: list[tuple[str, str]] = []

    def slow_answer(run_id: str, keys: Iterable[str] | None = None) -> dict[str, MetricPoint]:
        time.sleep(0.5)
        asked.append((threading.current_thread().name, run_id))
        return real(run_id, keys)

    metrics.get_latest_metrics = slow_answer  # type: ignore[method-assign]
    again = client.get_run(run.id)
    started = time.perf_counter()
    again.log_metric("loss", 3.0)
    again.log_metric("loss", 4.0, step=20)
    again.log_metrics({"loss": 5.0, "acc": 0.6, "new": 1.0})
    took = time.perf_counter() - started
    assert took < 0.25, f"logging waited {took:.2f} s"
    history = again.get_metric_history("loss")
    assert [p.step for p in history] == [0, 7, 8, 20, 21]
    assert [p.step for p in again.get_metric_history("acc")] == [0, 1]
    assert [p.step for p in again.get_metric_history("new")] == [0]
    assert asked == [("cairn-metric-writer", run.id)]  # once, for the run


def test_a_reopened_run_with_more_keys_than_a_url_holds(open_client: MakeClient) -> None:
    keys = [f"layer.{i:04d}.grad_norm" for i in range(1_200)]
    first = open_client()
    run = first.set_experiment_run("r")
    run.log_metrics(dict.fromkeys(keys, 1.0))
    first.close()
    again = open_client().get_run(run.id)
    again.log_metrics(dict.fromkeys(keys, 2.0))
    again.flush()
    assert [p.step for p in again.get_metric_history(keys[-1])] == [0, 1]
    assert len(again.get_metrics_latest(keys)) == len(keys)


def test_no_keys_asked_is_no_metric(client: cairn.Client) -> None:
    run = client.start_run()
    run.log_metric("loss", 1.0)
    run.log_attribute("team", "vision")
    assert run.get_metrics_latest([]) == {}
    assert client._backend.labels.get_attributes(run.id, []) == {}


def test_an_ended_run_leaves_no_state_behind(client: cairn.Client) -> None:
    runs = [client.start_run() for _ in range(3)]
    for run in runs:
        run.log_metrics({"a": 1.0, "b": 2.0})
        run.end()
    assert client._batcher._series == {}
    runs[0].resume()
    runs[0].log_metric("a", 3.0)  # logged again: numbered after what is stored
    assert [p.step for p in runs[0].get_metric_history("a")] == [0, 1]


def test_a_new_run_never_asks_for_its_steps(client: cairn.Client) -> None:
    metrics = client._backend.metrics
    asked: list[str] = []
    real = metrics.get_latest_metrics

    def counted(run_id: str, keys: Iterable[str] | None = None) -> dict[str, MetricPoint]:
        asked.append(run_id)
        return real(run_id, keys)

    metrics.get_latest_metrics = counted  # type: ignore[method-assign]
    run = client.start_run()
    run.log_metric("loss", 1.0)
    run.log_metrics({"loss": 2.0, "acc": 1.0})
    run.flush()
    assert asked == []
    assert [p.step for p in run.get_metric_history("loss")] == [0, 1]


def test_timestamp_defaults_to_now_in_ms(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    before = now_ms()
    run.log_metric("a", 1.0)
    run.log_metrics({"b": 1.0})
    after = now_ms()
    [a] = run.get_metric_history("a")
    [b] = run.get_metric_history("b")
    assert before <= a.timestamp <= after
    assert before <= b.timestamp <= after
    run.log_metric("a", 2.0, timestamp=1234)
    assert run.get_metric_history("a")[1].timestamp == 1234


def test_history_is_in_step_order(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for step in (5, 1, 9, 3):
        run.log_metric("x", float(step), step=step, timestamp=1000 + step)
    run.log_metric("x", 30.0, step=3, timestamp=999)  # same step, earlier timestamp
    history = run.get_metric_history("x")
    assert [(p.step, p.timestamp, p.value) for p in history] == [
        (1, 1001, 1.0),
        (3, 999, 30.0),
        (3, 1003, 3.0),
        (5, 1005, 5.0),
        (9, 1009, 9.0),
    ]
    assert all(isinstance(p, MetricPoint) for p in history)


def test_latest_is_highest_step_then_latest_timestamp(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("x", 7.0, step=7, timestamp=100)
    run.log_metric("x", 2.0, step=2, timestamp=500)  # later, but a lower step
    run.log_metric("x", 5.0, step=5, timestamp=900)
    assert run.get_metric("x") == 7.0
    run.log_metric("x", 70.0, step=7, timestamp=200)  # same step, later timestamp
    run.log_metric("x", 71.0, step=7, timestamp=150)  # same step, earlier than the best
    assert run.get_metric("x") == 70.0
    latest = run.get_metrics_latest(["x"])["x"]
    assert (latest.step, latest.timestamp, latest.value) == (7, 200, 70.0)


def test_latest_within_one_batch(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("x", 9.0, step=9, timestamp=10)
    run.log_metric("x", 3.0, step=3, timestamp=99)
    run.log_metric("x", 9.5, step=9, timestamp=20)
    run.log_metric("x", 9.1, step=9, timestamp=15)
    assert run.get_metric("x") == 9.5


def test_latest_across_clients(open_client: MakeClient) -> None:
    first = open_client().set_experiment_run("r")
    first.log_metric("x", 10.0, step=10)
    first.flush()
    second = open_client().get_run(first.id)
    second.log_metric("x", 4.0, step=4)
    second.flush()
    assert first.get_metric("x") == 10.0
    assert second.get_metric("x") == 10.0


# -- the background batcher -------------------------------------------------------------


def test_log_metric_queues_and_flush_writes(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = writer.set_experiment_run("r")
    for i in range(100):
        run.log_metric("loss", float(i))
    reader = open_client().get_run(run.id)
    assert reader.get_metric_history("loss") == []  # still queued in the writer
    run.flush()
    assert len(reader.get_metric_history("loss")) == 100
    run.log_metrics({"a": 1.0, "b": 2.0})
    writer.flush()  # the client's flush waits for the same queue
    assert reader.get_metrics()["b"] == 2.0


def test_reads_see_the_same_process_writes(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    client = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = client.set_experiment_run("r")
    run.log_metric("loss", 0.5)
    assert run.get_metric("loss") == 0.5
    run.log_metric("loss", 0.25)
    assert [p.value for p in run.get_metric_history("loss")] == [0.5, 0.25]
    run.log_metrics({"acc": 0.9})
    assert run.get_metrics() == {"loss": 0.25, "acc": 0.9}
    # Another handle on the same run, in the same client, sees them too.
    run.log_metric("loss", 0.125)
    assert client.get_run(run.id).get_metric("loss") == 0.125


def test_ending_a_run_flushes(open_client: MakeClient, make_settings: MakeSettings) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    with writer.start_run() as run:
        run.log_metric("loss", 1.0)
    other = writer.start_run()
    other.log_metric("loss", 2.0)
    other.end("failed")
    reader = open_client()
    assert reader.get_run(run.id).get_metric("loss") == 1.0
    assert reader.get_run(other.id).get_metric("loss") == 2.0


def test_closing_the_client_flushes(open_client: MakeClient, make_settings: MakeSettings) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = writer.set_experiment_run("r")
    for i in range(10):
        run.log_metric("loss", float(i))
    writer.close()
    assert len(open_client().get_run(run.id).get_metric_history("loss")) == 10


def test_small_batches_write_many_points(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    client = open_client(settings=make_settings(batch_size=7, flush_interval=0.01))
    run = client.set_experiment_run("r")
    for i in range(500):
        run.log_metric("loss", float(i))
        run.log_metrics({"a": float(i), "b": -float(i)})
    history = run.get_metric_history("loss")
    assert steps_and_values(history) == [(i, float(i)) for i in range(500)]
    assert run.get_metrics() == {"loss": 499.0, "a": 499.0, "b": -499.0}


EXIT_SCRIPT = """
import sys
import cairn

client = cairn.Client(home=sys.argv[1], store=sys.argv[2])
run = client.set_experiment_run("r")
for i in range(300):
    run.log_metric("loss", float(i))
run.log_metrics({"a": 1.0, "b": 2.0}, step=7)
print(run.id)
# No flush, no close: the interpreter's exit must write the queue.
"""


def test_interpreter_exit_flushes(open_client: MakeClient, home: Path, store_url: str) -> None:
    env = {**os.environ, "CAIRN_FLUSH_INTERVAL": str(SLOW_FLUSH)}
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(home), store_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "could not be written" not in done.stderr
    run = open_client().get_run(done.stdout.strip())
    assert steps_and_values(run.get_metric_history("loss")) == [(i, float(i)) for i in range(300)]
    assert steps_and_values(run.get_metric_history("a")) == [(7, 1.0)]
    assert steps_and_values(run.get_metric_history("b")) == [(7, 2.0)]


def test_a_failed_write_is_raised_by_flush(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = writer.set_experiment_run("r")
    run.log_metric("loss", 1.0)
    run.flush()
    other = open_client()
    other.get_run(run.id).delete()  # the next batch now hits a deleted run

    run.log_metric("loss", 2.0)
    with pytest.raises(cairn.Conflict, match="deleted"):
        run.flush()
    run.flush()  # raised once; nothing else is pending

    other.restore_run(run.id)
    run.log_metric("loss", 3.0)
    run.flush()
    assert [p.value for p in other.get_run(run.id).get_metric_history("loss")] == [1.0, 3.0]


def test_a_failed_write_is_raised_by_the_next_log_call(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    writer = open_client(settings=make_settings(flush_interval=0.01))
    run = writer.set_experiment_run("r")
    run.log_metric("loss", 1.0)
    run.flush()
    other = open_client()
    other.get_run(run.id).delete()

    run.log_metric("loss", 2.0)
    deadline = time.monotonic() + 30
    with pytest.raises(cairn.Conflict, match="deleted"):
        while time.monotonic() < deadline:
            time.sleep(0.02)
            run.log_metric("loss", 2.0)
    # Points logged after the failure also failed; their error surfaces once more at most.
    other.restore_run(run.id)
    try:
        run.flush()
    except cairn.Conflict:
        run.flush()
    run.log_metric("loss", 9.0)
    assert run.get_metric("loss") == 9.0


def test_a_failed_write_is_raised_by_reads(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = writer.set_experiment_run("r")
    run.log_metric("loss", 1.0)
    run.flush()
    open_client().get_run(run.id).delete()
    run.log_metric("loss", 2.0)
    with pytest.raises(cairn.Conflict):
        run.get_metric("loss")


def test_a_failed_write_is_raised_when_the_run_ends(
    open_client: MakeClient, make_settings: MakeSettings
) -> None:
    writer = open_client(settings=make_settings(flush_interval=SLOW_FLUSH))
    run = writer.set_experiment_run("r")
    run.log_metric("loss", 1.0)
    run.flush()
    other = open_client()
    other.get_run(run.id).delete()
    run.log_metric("loss", 2.0)
    with pytest.raises(cairn.Conflict):
        run.end()


AFTER_CLOSE_SCRIPT = """
import sys
import cairn

client = cairn.Client(home=sys.argv[1], store=sys.argv[2])
run = client.set_experiment_run("r")
run.log_metric("loss", 1.0)
client.close()
try:
    run.log_metric("loss", 2.0)
except cairn.CairnError as exc:
    print("refused:", exc)
else:
    print("accepted")
client.close()  # closing twice is harmless
print("closed")
"""


def test_logging_after_close_is_refused(home: Path, sqlite_url: str) -> None:
    # In a child process: a point queued after close could hang a flush, or the exit.
    try:
        done = subprocess.run(
            [sys.executable, "-c", AFTER_CLOSE_SCRIPT, str(home), sqlite_url],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"the child hung; its output so far: {hung.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "refused: the client is closed; no more metrics can be logged",
        "closed",
    ]
    with cairn.Client(home=home, store=sqlite_url) as client:
        run = client.get_project("default").list_experiments()[0].list_runs()[0]
        assert [p.value for p in run.get_metric_history("loss")] == [1.0]


def test_many_points_in_order(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    for i in range(5000):
        run.log_metric("loss", 1.0 / (i + 1))
    history = run.get_metric_history("loss")
    assert len(history) == 5000
    assert history[-1] == MetricPoint(4999, history[-1].timestamp, 1.0 / 5000)


# -- wide runs and columnar histories -----------------------------------------------------

WIDE_KEYS = [f"layer{i}.norm" for i in range(1_000)]


def test_a_wide_run_stores_every_point(open_client: MakeClient) -> None:
    client = open_client()
    run = client.set_experiment_run("r")
    for step in range(3):  # default steps: each key's own next step
        run.log_metrics({key: step + i / 1000 for i, key in enumerate(WIDE_KEYS)})
    run.log_metrics({key: 10.0 + i for i, key in enumerate(WIDE_KEYS)}, step=7)
    client.close()

    again = open_client().get_run(run.id)  # a reopened run: its steps are asked once
    again.log_metrics({key: -1.0 for key in WIDE_KEYS[::2]})
    latest = again.get_metrics_latest()
    assert len(latest) == len(WIDE_KEYS)
    for i, key in enumerate(WIDE_KEYS):
        expected = [(s, s + i / 1000) for s in range(3)] + [(7, 10.0 + i)]
        if i % 2 == 0:
            expected.append((8, -1.0))
        columns = again.get_metric_columns(key)
        assert list(zip(columns.steps, columns.values, strict=True)) == expected, key
        assert (latest[key].step, latest[key].value) == expected[-1]


def test_columns_equal_the_history(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    now = now_ms()
    logged = [(5, 1.0), (1, math.nan), (3, math.inf), (2, -math.inf), (1, -0.0), (9, 1e-300)]
    for step, value in logged:
        run.log_metric("x", value, step=step, timestamp=now + step)
        run.flush()  # one batch each: chunks that overlap
    run.log_metrics({"x": 7.5, "y": 0.5}, step=4, timestamp=now)
    history = run.get_metric_history("x")
    columns = run.get_metric_columns("x")
    assert len(columns) == len(history) == 7
    assert (columns.steps.typecode, columns.timestamps.typecode, columns.values.typecode) == (
        "q",
        "q",
        "d",
    )
    assert list(columns.steps) == [p.step for p in history] == [1, 1, 2, 3, 4, 5, 9]
    assert list(columns.timestamps) == [p.timestamp for p in history]
    assert math.isnan(columns.values[0])
    assert repr(list(columns.values)[1:]) == repr([p.value for p in history][1:])
    assert repr(list(columns.values)[1:]) == repr([-0.0, -math.inf, math.inf, 7.5, 1.0, 1e-300])


def test_columns_of_an_empty_series(client: cairn.Client) -> None:
    run = client.set_experiment_run("r")
    columns = run.get_metric_columns("never")
    assert len(columns) == 0
    assert list(columns.steps) == list(columns.timestamps) == list(columns.values) == []
    with pytest.raises(cairn.InvalidArgument):
        run.get_metric_columns("")


def test_a_long_history_as_columns(client: cairn.Client) -> None:
    """Long enough that the server streams it in pieces and the client reads them into
    its arrays as they come."""
    run = client.set_experiment_run("r")
    n = 120_000
    for i in range(n):
        run.log_metric("loss", i / n)
    columns = run.get_metric_columns("loss")
    assert list(columns.steps) == list(range(n))
    assert columns.values[n - 1] == (n - 1) / n
    assert [tuple(p) for p in run.get_metric_history("loss")[-3:]] == list(
        zip(columns.steps[-3:], columns.timestamps[-3:], columns.values[-3:], strict=True)
    )


def test_columns_to_pandas(client: cairn.Client) -> None:
    pandas = pytest.importorskip("pandas")
    run = client.set_experiment_run("r")
    run.log_metric("x", 0.5, step=3, timestamp=1_000)
    run.log_metric("x", math.nan, step=1, timestamp=2_000)
    frame = run.get_metric_columns("x").to_pandas()
    assert list(frame.columns) == ["step", "timestamp", "value"]
    assert [str(t) for t in frame.dtypes] == ["int64", "int64", "float64"]
    assert frame["step"].tolist() == [1, 3]
    assert frame["timestamp"].tolist() == [2_000, 1_000]
    assert math.isnan(frame["value"][0]) and frame["value"][1] == 0.5
    assert len(run.get_metric_columns("never").to_pandas()) == 0
    assert isinstance(frame, pandas.DataFrame)


def test_columns_to_pandas_names_pandas_when_missing(
    client: cairn.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = client.set_experiment_run("r")
    run.log_metric("x", 0.5)
    columns = run.get_metric_columns("x")
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas fails as if missing
    with pytest.raises(ModuleNotFoundError, match="needs pandas"):
        columns.to_pandas()
