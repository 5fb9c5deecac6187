"""Each command, in-process, against an embedded store in the test's folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cairn
from cairn.core.ids import short_id
from cairn.store.metadata.store import HEAD_REVISION
from tests.cli.conftest import Invoke, Tracked, json_of

MISSING_RUN = "01900000-0000-7000-8000-000000000000"


# -- projects and experiments ---------------------------------------------------------------
def test_projects_ls_table_and_json(invoke: Invoke, tracked: Tracked) -> None:
    table = invoke("projects", "ls", "--home", tracked.home)
    assert table.exit_code == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:2] == ["NAME", "ID"]
    assert row.split()[:2] == ["churn", tracked.project_id]
    assert "who leaves?" in row
    [project] = json_of(invoke("projects", "ls", "--home", tracked.home, "--json"))
    assert project["name"] == "churn"
    assert project["id"] == tracked.project_id
    assert project["description"] == "who leaves?"


def test_home_comes_from_the_environment(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("projects", "ls", "--json", env={"CAIRN_HOME": str(tracked.home)})
    assert [p["name"] for p in json_of(result)] == ["churn"]


def test_home_and_store_flags_win_over_cairn_url(invoke: Invoke, tracked: Tracked) -> None:
    # Nothing listens on port 9: were the URL used, the command would fail.
    env = {"CAIRN_URL": "http://127.0.0.1:9", "CAIRN_RETRY_TIMEOUT": "0.1"}
    result = invoke("projects", "ls", "--home", tracked.home, "--json", env=env)
    assert [p["name"] for p in json_of(result)] == ["churn"]


def test_reading_a_folder_without_a_store_is_an_error_and_creates_nothing(
    invoke: Invoke, tmp_path: Path
) -> None:
    result = invoke("projects", "ls")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no Cairn store in '.cairn'")
    assert "Traceback" not in result.output
    assert not (tmp_path / ".cairn").exists()


def test_url_with_home_is_a_usage_error(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("projects", "ls", "--url", "http://127.0.0.1:9", "--home", tracked.home)
    assert result.exit_code == 2
    assert "--url" in result.stderr


def test_invalid_environment_setting_is_an_error(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("projects", "ls", "--home", tracked.home, env={"CAIRN_BATCH_SIZE": "-1"})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: CAIRN_BATCH_SIZE: invalid value '-1'")


def test_experiments_ls(invoke: Invoke, tracked: Tracked) -> None:
    table = invoke("experiments", "ls", "churn", "--home", tracked.home)
    assert table.exit_code == 0, table.stderr
    assert "baseline" in table.stdout and tracked.experiment_id in table.stdout
    [experiment] = json_of(invoke("experiments", "ls", "churn", "--home", tracked.home, "--json"))
    assert (experiment["name"], experiment["project_id"]) == ("baseline", tracked.project_id)


def test_experiments_ls_of_a_missing_project(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("experiments", "ls", "nope", "--home", tracked.home)
    assert result.exit_code == 1
    assert result.stderr == "error: no project named 'nope'\n"


# -- runs -----------------------------------------------------------------------------------
def test_runs_ls(invoke: Invoke, tracked: Tracked) -> None:
    table = invoke("runs", "ls", "churn/baseline", "--home", tracked.home)
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ID", "STATUS", "STARTED", "DURATION", "OWNER"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["first", short_id(tracked.run_id), "finished"]
    ]
    runs = json_of(invoke("runs", "ls", "churn/baseline", "--home", tracked.home, "--json"))
    assert [r["id"] for r in runs] == [tracked.run_id]
    everything = invoke("runs", "ls", "churn/baseline", "--include-deleted", "--home", tracked.home)
    assert "second" in everything.stdout and "(deleted)" in everything.stdout


def test_runs_ls_errors_name_what_is_missing(invoke: Invoke, tracked: Tracked) -> None:
    no_experiment = invoke("runs", "ls", "churn/nope", "--home", tracked.home)
    assert no_experiment.exit_code == 1
    assert no_experiment.stderr == "error: no experiment named 'nope' in project 'churn'\n"
    no_project = invoke("runs", "ls", "nope/baseline", "--home", tracked.home)
    assert no_project.exit_code == 1
    assert no_project.stderr == "error: no project named 'nope'\n"
    for bad in ("churn", "churn/", "/baseline"):
        usage = invoke("runs", "ls", bad, "--home", tracked.home)
        assert usage.exit_code == 2, bad
        assert "PROJECT/EXPERIMENT" in usage.stderr


def test_runs_ls_with_slashes_in_names(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "slashes"
    with cairn.Client(home=home) as client:
        client.set_project("team/vision")
        client.set_experiment("resnet/50")
        run = client.set_experiment_run("r1")
    runs = json_of(invoke("runs", "ls", "team/vision/resnet/50", "--home", home, "--json"))
    assert [r["id"] for r in runs] == [run.id]


def test_runs_show_json(invoke: Invoke, tracked: Tracked) -> None:
    shown = json_of(invoke("runs", "show", tracked.run_id, "--home", tracked.home, "--json"))
    assert shown["run"]["id"] == tracked.run_id
    assert shown["run"]["status"] == "finished"
    assert (shown["project"], shown["experiment"]) == ("churn", "baseline")
    assert shown["hyperparameters"] == {"lr": 0.1, "epochs": 3, "model": "logreg", "shuffle": True}
    assert shown["metrics"]["loss"]["value"] == 0.25
    assert shown["metrics"]["loss"]["step"] == 2
    assert shown["tags"] == ["baseline"]
    assert shown["attributes"] == {"confusion": [[1, 2], [3, 4]]}
    artifacts = {a["key"]: a for a in shown["artifacts"]}
    assert artifacts["weights"]["kind"] == "file" and artifacts["weights"]["size"] == 9
    assert artifacts["plots"]["kind"] == "tree" and artifacts["plots"]["file_count"] == 2


def test_runs_show_table(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("runs", "show", tracked.run_id, "--home", tracked.home)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"run first ({tracked.run_id})\n")
    assert "churn/baseline" in out
    for section in ("hyperparameters:", "metrics (latest):", "attributes:", "artifacts:"):
        assert f"\n{section}\n" in out
    assert any(line.split() == ["lr", "0.1", "float"] for line in out.splitlines())
    assert any(line.split()[:3] == ["loss", "0.25", "2"] for line in out.splitlines())
    assert "[[1, 2], [3, 4]]" in out
    assert "weights" in out and "plots" in out


def test_runs_show_prints_names_as_text_not_markup(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "markup"
    with cairn.Client(home=home) as client:
        run = client.start_run("[bold]x[/bold]", hyperparameters={"[red]k": "[blue]v"})
    out = invoke("runs", "show", run.id, "--home", home).stdout
    assert "run [bold]x[/bold]" in out
    assert "[red]k" in out and "[blue]v" in out


def test_runs_show_errors(invoke: Invoke, tracked: Tracked) -> None:
    missing = invoke("runs", "show", MISSING_RUN, "--home", tracked.home)
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: ") and MISSING_RUN in missing.stderr
    malformed = invoke("runs", "show", "not-an-id", "--home", tracked.home)
    assert malformed.exit_code == 1
    assert malformed.stderr.startswith("error: run: must be an id, 8 or more hex digits")
    assert "Traceback" not in missing.output + malformed.output


# -- artifacts ------------------------------------------------------------------------------
def test_artifacts_get_a_file_into_a_folder(
    invoke: Invoke, tracked: Tracked, tmp_path: Path
) -> None:
    result = invoke("artifacts", "get", tracked.run_id, "weights", "out/", "--home", tracked.home)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "weights").read_bytes() == b"\x00\x01weights"
    assert result.stdout.startswith("got weights (1 file, 9 B) -> out/weights in ")
    assert "/s)" in result.stdout


def test_artifacts_get_a_folder_and_a_file_inside_it(
    invoke: Invoke, tracked: Tracked, tmp_path: Path
) -> None:
    home = tracked.home
    result = invoke("artifacts", "get", tracked.run_id, "plots", "out/", "--home", home, "--json")
    got = json_of(result)
    assert got == {"key": "plots", "path": "out/plots", "bytes": 26, "files": 2}
    assert (tmp_path / "out" / "plots" / "sub" / "acc.txt").read_text() == "accuracy curve\n"
    single = invoke(
        "artifacts", "get", tracked.run_id, "plots/loss.txt", "loss.txt", "--home", home
    )
    assert single.exit_code == 0, single.stderr
    assert (tmp_path / "loss.txt").read_text() == "loss curve\n"


def test_artifacts_get_a_missing_key(invoke: Invoke, tracked: Tracked, tmp_path: Path) -> None:
    result = invoke("artifacts", "get", tracked.run_id, "nope", "out/", "--home", tracked.home)
    assert result.exit_code == 1
    assert result.stderr == f"error: no artifact 'nope' on {tracked.run_id}\n"
    assert not (tmp_path / "out").exists()


def test_artifacts_put_a_folder_and_a_file_then_get_them_back(
    invoke: Invoke, tracked: Tracked, tmp_path: Path
) -> None:
    folder = tmp_path / "plots"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 1500)
    (folder / "b.txt").write_text("b")
    closed = invoke("artifacts", "put", tracked.run_id, "x", "./plots", "--home", tracked.home)
    assert closed.exit_code == 1
    assert closed.stderr.startswith(f"error: run {tracked.run_id} is finished: its artifacts")
    with cairn.Client(home=tracked.home) as client:  # a run still running takes them
        client.set_project("churn")
        client.set_experiment("baseline")
        run_id = client.start_run("third", capture="none").id
    put = invoke("artifacts", "put", run_id, "new-plots", "./plots", "--home", tracked.home)
    assert put.exit_code == 0, put.stderr
    assert put.stdout.startswith("put plots (2 files, 1.5 kB) -> new-plots (tree, ")
    info = json_of(
        invoke(
            "artifacts",
            "put",
            run_id,
            "notes",
            folder / "b.txt",
            "--home",
            tracked.home,
            "--json",
        )
    )
    assert (info["key"], info["kind"], info["size"], info["file_count"]) == ("notes", "file", 1, 1)
    back = invoke("artifacts", "get", run_id, "new-plots", "back/", "--home", tracked.home)
    assert back.exit_code == 0, back.stderr
    assert (tmp_path / "back" / "new-plots" / "a.bin").read_bytes() == b"a" * 1500
    with cairn.Client(home=tracked.home) as client:
        keys = {a.key for a in client.get_run(run_id).list_artifacts()}
    assert {"new-plots", "notes"} <= keys


def test_artifacts_put_a_missing_path(invoke: Invoke, tracked: Tracked) -> None:
    result = invoke("artifacts", "put", tracked.run_id, "x", "nowhere", "--home", tracked.home)
    assert result.exit_code == 1
    assert result.stderr == "error: source: 'nowhere' is not a file or a folder\n"


# -- db -------------------------------------------------------------------------------------
def test_db_current_and_upgrade(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    assert invoke("db", "current", "--home", home).stdout == "no schema\n"
    upgraded = invoke("db", "upgrade", "--home", home)
    assert upgraded.exit_code == 0, upgraded.stderr
    assert upgraded.stdout == f"schema at revision {HEAD_REVISION}\n"
    assert invoke("db", "current", "--home", home).stdout == f"{HEAD_REVISION}\n"


def test_db_with_a_store_url(invoke: Invoke, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    assert invoke("db", "upgrade", "--store", url).exit_code == 0
    assert invoke("db", "current", "--store", url).stdout == f"{HEAD_REVISION}\n"


def test_db_on_an_unusable_store_is_an_error(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("db", "current", "--store", "nosuchdialect://x")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


# -- demo -----------------------------------------------------------------------------------
def test_demo_fills_a_fresh_store(invoke: Invoke, tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = invoke("demo", "--home", home, "--runs", "2", "--epochs", "5")
    assert result.exit_code == 0, result.stderr
    assert "cairn runs ls demo/logreg" in result.stdout
    runs = json_of(invoke("runs", "ls", "demo/logreg", "--home", home, "--json"))
    assert len(runs) == 2 and {r["status"] for r in runs} == {"finished"}
    shown = [json_of(invoke("runs", "show", r["id"], "--home", home, "--json")) for r in runs]
    assert sum("best" in s["tags"] for s in shown) == 1
    for s in shown:
        assert set(s["hyperparameters"]) == {"lr", "epochs", "l2", "seed", "model"}
        assert s["metrics"]["loss"]["step"] == 4
        assert [a["key"] for a in s["artifacts"]] == ["weights"]
        assert set(s["attributes"]) == {"confusion", "dataset"}
    best = next(s for s in shown if "best" in s["tags"])["run"]["id"]
    got = invoke("artifacts", "get", best, "weights", "out/", "--home", home)
    assert got.exit_code == 0, got.stderr
    assert (tmp_path / "out" / "weights" / "coef.npy").is_file()


# -- the command line itself ----------------------------------------------------------------
def test_version_and_usage_errors(invoke: Invoke) -> None:
    assert invoke("--version").stdout == f"cairn {cairn.__version__}\n"
    assert invoke("no-such-command").exit_code == 2
    assert invoke("runs", "show").exit_code == 2  # missing RUN_ID
    assert invoke("server", "--port", "0").exit_code == 2
    assert invoke("server", "--workers", "many").exit_code == 2
    bare = invoke()
    assert bare.exit_code == 2 and "Usage:" in bare.output


def test_python_dash_m_cairn_runs_the_same_cli(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "cairn", "db", "upgrade", "--home", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"schema at revision {HEAD_REVISION}\n"
    bad = subprocess.run(
        [sys.executable, "-m", "cairn", "runs", "show", "x", "--home", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: run: must be an id, 8 or more hex digits")


def test_help_loads_no_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from cairn.cli import main\n"
        "try:\n    main(['--help'])\n"
        "finally:\n"
        "    heavy = ('sqlalchemy', 'fastapi', 'uvicorn', 'httpx', 'numpy', 'blake3')\n"
        "    print([m for m in heavy if m in sys.modules], file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Commands:" in done.stdout
    assert done.stderr.strip() == "[]"


def test_flags_of_settings_come_from_the_settings_table(invoke: Invoke) -> None:
    from cairn.core.settings import SETTINGS

    table = {s.name: s for s in SETTINGS}
    help_text = " ".join(invoke("server", "--help").stdout.split())
    for name in ("host", "port", "workers", "home", "store_uri"):
        setting = table[name]
        assert f"Env: {setting.env}." in help_text, name
        assert setting.doc.replace("`", "").split(".")[0] in help_text, name
    assert "Env: CAIRN_URL." in " ".join(invoke("runs", "show", "--help").stdout.split())


def test_output_piped_into_head_ends_quietly(tracked: Tracked) -> None:
    listing = subprocess.Popen(
        [sys.executable, "-m", "cairn", "runs", "metrics", tracked.run_id, "--home", tracked.home],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert listing.stdout is not None
    listing.stdout.close()  # as `head` does once it has its lines
    _, err = listing.communicate(timeout=60)
    assert listing.returncode in (0, 141)  # 0 if everything fit in the pipe at once
    assert b"Broken pipe" not in err and b"Traceback" not in err
