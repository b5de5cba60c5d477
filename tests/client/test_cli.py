"""The `li2` shell command against the real service: --json output, tables, exit codes 0/1/2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from li2_client.cli import format_table, main

LI2 = Path(sys.executable).parent / "li2"


@pytest.fixture
def li2(live_service, alice, capsys):
    """Run `li2 ARGS` in-process with this service's URL and token; return (code, stdout, stderr)."""

    def run(*args):
        code = main(["--url", live_service.url, f"--token={alice}", *args])  # "=": tokens may start with "-"
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_status_list_timeline_metrics_as_json(li2, finished_exp, tmp_path):
    code, out, _ = li2("--json", "status", finished_exp.id)
    assert code == 0 and json.loads(out)["status"] == "succeeded"
    code, out, _ = li2("list", "--status", "succeeded", "--json")
    assert code == 0 and finished_exp.id in {e["id"] for e in json.loads(out)}
    code, out, _ = li2("timeline", finished_exp.id, "--json")
    assert code == 0 and json.loads(out)["stages"][0]["name"] == "lazy"
    code, out, _ = li2("metrics", finished_exp.id, "--csv", str(tmp_path / "m.csv"))
    assert code == 0 and out.strip() == str(tmp_path / "m.csv")
    assert (tmp_path / "m.csv").read_text().startswith("epoch,")
    code, out, _ = li2("metrics", finished_exp.id, "--csv", "-")
    assert code == 0 and out.splitlines() == out_lines(tmp_path / "m.csv")
    code, out, _ = li2("metrics", finished_exp.id, "--json")
    assert code == 0 and len(json.loads(out)["columns"]["epoch"]) == len(out_lines(tmp_path / "m.csv")) - 1


def test_metrics_follow_prints_one_line_per_row_then_the_status(li2, finished_exp):
    code, out, _ = li2("metrics", finished_exp.id, "--follow")
    lines = out.splitlines()
    epochs = finished_exp.metric_columns()["epoch"]
    assert code == 0 and lines[-1] == f"{finished_exp.id}: succeeded" and len(lines) == len(epochs) + 1
    assert [line.split()[0] for line in lines[:-1]] == [f"epoch={e}" for e in epochs]


def out_lines(path):
    return path.read_text().splitlines()


def test_human_tables(li2, finished_exp):
    code, out, _ = li2("list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["id", "status", "task"]
    assert any(line.startswith(finished_exp.id) and "succeeded" in line and "cyclic(11)" in line for line in lines)
    code, out, _ = li2("timeline", finished_exp.id)
    assert code == 0 and out.splitlines()[0].split() == ["stage", "start", "end", "criterion"]
    assert "lazy" in out
    code, out, _ = li2("status", finished_exp.id)
    assert code == 0 and "succeeded" in out and "summary test_acc" in out


def test_submit_json_and_yaml_files(li2, finished_exp, tiny, tmp_path):
    spec = tiny().to_dict()
    (tmp_path / "s.json").write_text(json.dumps(spec))
    code, out, _ = li2("submit", str(tmp_path / "s.json"), "--json")
    assert code == 0 and json.loads(out)["id"] == finished_exp.id and json.loads(out)["cached"] is True
    yaml = pytest.importorskip("yaml")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    code, out, _ = li2("submit", str(tmp_path / "s.yaml"), "--wait", "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"


def test_bad_input_exits_2_with_field_messages(li2, tiny, tmp_path):
    spec = tiny().to_dict()
    spec["model"]["activation"] = "tanh"
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    code, _, err = li2("submit", str(tmp_path / "bad.json"))
    assert code == 2 and "model.activation" in err and "sqr" in err
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = li2("submit", str(tmp_path / "broken.json"))
    assert code == 2 and "not valid JSON" in err
    code, _, err = li2("submit", str(tmp_path / "absent.json"))
    assert code == 2 and "cannot read" in err
    (tmp_path / "sweep.json").write_text(json.dumps({"base": spec}))
    code, _, err = li2("sweep", "submit", str(tmp_path / "sweep.json"))
    assert code == 2 and "grid" in err


def test_service_errors_exit_1(li2, live_service):
    code, _, err = li2("status", "0" * 32)
    assert code == 1 and "NotFound" in err
    code = main(["--url", live_service.url, "--token", "wrong", "list"])
    assert code == 1


def test_sweep_status_runs_and_law(li2, finished_sweep, tmp_path):
    code, out, _ = li2("sweep", "status", finished_sweep.id, "--json")
    assert code == 0 and json.loads(out)["n_runs"] == 8
    code, out, _ = li2("sweep", "runs", finished_sweep.id)
    assert code == 0 and "task.order" in out.splitlines()[0] and len(out.splitlines()) == 2 + 8
    code, out, _ = li2("sweep", "law", finished_sweep.id, "--json")
    law = json.loads(out)
    # Two sizes per order bracket n* but do not resolve c: the JSON says so and the exit code is 1.
    assert code == 1 and law["c"] is None and law["status"] == "unresolved"
    assert {p["order"] for p in law["critical"]} == {11, 13}
    code, out, _ = li2("sweep", "law", finished_sweep.id, "--plot", str(tmp_path / "law.png"))
    assert code == 1 and "no fit: " in out and "needs sizes between" in out and (tmp_path / "law.png").exists()
    assert "c = " not in out


def test_console_script_runs_as_a_process(live_service, alice, finished_exp):
    """The installed `li2` entry point, with the token from the environment (no arguments)."""
    env = {"LI2_URL": live_service.url, "LI2_TOKEN": alice, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [str(LI2), "status", finished_exp.id, "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["id"] == finished_exp.id


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["list", "--status", "bogus"])
    assert info.value.code == 2


def test_format_table_aligns_columns():
    text = format_table(["a", "long"], [[1.23456789, None], ["xyz", 5]])
    assert text.splitlines() == ["a      long", "-----  ----", "1.235  —", "xyz    5"]


def test_health_and_cancel_finished_run(li2, finished_exp):
    code, out, _ = li2("health", "--json")
    assert code == 0 and json.loads(out)["status"] == "ok"
    code, _, err = li2("cancel", finished_exp.id)
    assert code == 1 and "Conflict" in err  # a finished run cannot be cancelled


def test_queue_as_json_and_table_matches_the_sdk(li2, client, finished_exp):
    """`li2 queue` and `client.queue()` show the same queue: the embedded worker's slot, the dispatch."""
    q = client.queue()
    assert q["dispatch"] == "fair" and q["slots"] >= 1 and [w["slots"] for w in q["workers"]] == [1]
    code, out, _ = li2("queue", "--json")
    assert code == 0 and json.loads(out)["workers"][0]["name"] == q["workers"][0]["name"]
    code, out, _ = li2("queue")
    assert code == 0 and "1 worker slot(s)" in out and ("nothing waiting" in out or "turn" in out)
