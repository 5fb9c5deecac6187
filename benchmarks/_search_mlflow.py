"""MLflow's side of the search benchmark, run by MLflow's own Python (``/work/peers/mlflow``),
never this repository's ``.venv``. ``benchmarks/search.py`` runs it; by hand::

    /work/peers/mlflow/bin/python benchmarks/_search_mlflow.py fill DIR N
    /work/peers/mlflow/bin/python benchmarks/_search_mlflow.py bench TRACKING_URI N REPEATS

``fill`` writes runs 0..N-1 of ``_search_data`` into ``DIR/mlflow.db`` (experiments
``search-bench/exp-K``; hyperparameters as params (strings), the 10-point histories as
metrics, tags as ``TAG=true`` and attributes as tags). The first ``EXACT`` runs go through
``MlflowClient`` (``create_run``, ``log_batch``, ``set_terminated``: ~0.1-0.2 s a run here,
over 20 minutes for 10,000), the others in chunks through MLflow's own ORM classes, filled
as ``SqlAlchemyStore.create_run``, ``log_batch`` and ``update_run_info`` fill them; a check
compares a run of each kind read back by ``MlflowClient.get_run``. SQLite runs with
``synchronous=OFF`` during the fill only (it writes the same rows; the timed reads run at
MLflow's defaults).

``bench`` times, after one warm-up each, ``MlflowClient.search_runs`` for the filtered
top-100 and the listing of every run (params and latest metrics) by pages of 1,000, and
prints one JSON line per measure (``@@bench {...}``).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _search_data import EXPERIMENTS, PROJECT, make_run, runs

EXACT = 200
CHUNK = 1000
BASE_MS = 1_700_000_000_000  # the same timestamps as Cairn's fill
FILTER = "metrics.acc > 0.9 and params.model = 'tree'"
ORDER = ["metrics.acc DESC"]


def say(**fields: object) -> None:
    sys.stdout.write("@@bench " + json.dumps(fields) + "\n")
    sys.stdout.flush()


def experiment_names() -> list[str]:
    return [f"{PROJECT}/exp-{k}" for k in range(EXPERIMENTS)]


def mlflow_tags(run):  # type: ignore[no-untyped-def]
    return {**{t: "true" for t in run.tags}, **{k: str(v) for k, v in run.attributes.items()}}


def fast_sqlite() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_conn, record):  # type: ignore[no-untyped-def]
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()


def fill(folder: str, n: int) -> None:
    fast_sqlite()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
    experiments = [client.create_experiment(name) for name in experiment_names()]
    started = time.perf_counter()
    exact = min(EXACT, n)
    for run in runs(0, exact):
        created = client.create_run(experiments[run.experiment], run_name=run.name)
        rid = created.info.run_id
        metrics = [
            Metric(k, v, BASE_MS + run.index * 1000 + s, s)
            for k, values in run.metrics.items()
            for s, v in enumerate(values)
        ]
        params = [Param(k, str(v)) for k, v in run.hyperparameters.items()]
        tags = [RunTag(k, v) for k, v in mlflow_tags(run).items()]
        client.log_batch(rid, metrics=metrics, params=params, tags=tags)
        client.set_terminated(rid)
    template = client.get_run(client.search_runs(experiments, max_results=1)[0].info.run_id)
    user_id = template.info.user_id
    store = client._tracking_client.store
    locations = {e: client.get_experiment(e).artifact_location for e in experiments}
    for start in range(exact, n, CHUNK):
        with store.ManagedSessionMaker(read_only=False) as session:
            for run in runs(start, min(n, start + CHUNK)):
                rid = uuid.uuid4().hex
                now = int(time.time() * 1000)
                experiment = experiments[run.experiment]
                row = SqlRun(
                    name=run.name,
                    artifact_uri=f"{locations[experiment]}/{rid}/artifacts",
                    run_uuid=rid,
                    experiment_id=experiment,
                    source_type="UNKNOWN",
                    source_name="",
                    entry_point_name="",
                    user_id=user_id,
                    status=RunStatus.to_string(RunStatus.FINISHED),
                    start_time=now,
                    end_time=now,
                    deleted_time=None,
                    source_version="",
                    lifecycle_stage="active",
                )
                tags = {MLFLOW_RUN_NAME: run.name, **mlflow_tags(run)}
                row.tags = [SqlTag(key=k, value=v) for k, v in tags.items()]
                session.add(row)
                session.add_all(
                    SqlParam(key=k, value=str(v), run_uuid=rid)
                    for k, v in run.hyperparameters.items()
                )
                for key, values in run.metrics.items():
                    session.add_all(
                        SqlMetric(
                            run_uuid=rid,
                            key=key,
                            value=v,
                            timestamp=BASE_MS + run.index * 1000 + s,
                            step=s,
                            is_nan=False,
                        )
                        for s, v in enumerate(values)
                    )
                    last = len(values) - 1
                    session.add(
                        SqlLatestMetric(
                            run_uuid=rid,
                            key=key,
                            value=values[last],
                            timestamp=BASE_MS + run.index * 1000 + last,
                            step=last,
                            is_nan=False,
                        )
                    )
    seconds = time.perf_counter() - started
    check(client, experiments, n)
    say(op="fill", seconds=seconds, runs=n)


def check(client, experiments, n):  # type: ignore[no-untyped-def]
    """Run 0 (through the client) and the last run (through the ORM) read back as the
    generator made them, with the same tags."""
    for i in sorted({0, n - 1}):
        run = make_run(i)
        found = client.search_runs(experiments, f"attributes.run_name = '{run.name}'")
        assert len(found) == 1, (run.name, len(found))
        got = client.get_run(found[0].info.run_id)
        assert got.data.params == {k: str(v) for k, v in run.hyperparameters.items()}
        assert got.data.metrics == run.latest(), (got.data.metrics, run.latest())
        history = client.get_metric_history(got.info.run_id, "acc")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == run.metrics["acc"]
        assert got.info.status == "FINISHED", got.info.status
        assert got.data.tags == {"mlflow.runName": run.name, **mlflow_tags(run)}, got.data.tags


def median_time(call, repeats):  # type: ignore[no-untyped-def]
    call()  # warm-up
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def bench(uri: str, n: int, repeats: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [client.get_experiment_by_name(name).experiment_id for name in experiment_names()]

    def top() -> list[str]:
        found = client.search_runs(experiments, FILTER, order_by=ORDER, max_results=100)
        return [r.info.run_name for r in found]

    def listing() -> int:
        count, token = 0, None
        while True:
            page = client.search_runs(experiments, max_results=1000, page_token=token)
            for run in page:  # what a user reads: its params and latest metrics
                _ = run.data.params, run.data.metrics
                count += 1
            token = page.token
            if not token:
                return count

    median, times, names = median_time(top, repeats)
    say(op="top", seconds=median, times=times, names=names)
    median, times, count = median_time(listing, max(1, repeats // 3))
    if count != n:
        raise SystemExit(f"listed {count} runs, expected {n}")
    say(op="list", seconds=median, times=times, runs=count)


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if sys.argv[1] == "fill":
        fill(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "bench":
        bench(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
