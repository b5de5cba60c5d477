"""`li2 wait|features|predictions|checkpoints|plots` and `li2 sweep list|cancel` against the real
embedded service, the exit codes of waiting, and an example in every command's --help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from li2_client.cli import EXAMPLES, EXIT_CODES, RUN_EXIT, build_parser, main, subcommands


@pytest.fixture(scope="module")
def carol(live_service):
    """A user of this module's own (its long runs stay out of alice's quota)."""
    return live_service.create_user("carol-cli")


def run_li2(live_service, token, capsys, *args):
    code = main(["--url", live_service.url, f"--token={token}", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def li2(live_service, alice, capsys):
    return lambda *args: run_li2(live_service, alice, capsys, *args)


def test_wait_on_a_succeeded_run_exits_0_and_prints_its_accuracy(li2, finished_exp):
    code, out, _ = li2("wait", finished_exp.id, "--quiet")
    assert code == 0 and out.startswith(f"{finished_exp.id}: succeeded  test_acc=")
    code, out, _ = li2("wait", finished_exp.id, "--json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"


def test_wait_times_out_with_5_and_a_cancelled_run_exits_4(live_service, carol, capsys, tiny, tmp_path):
    long = tiny(seed=901, epochs=100000).to_dict()
    (tmp_path / "long.json").write_text(json.dumps(long))
    code, out, _ = run_li2(live_service, carol, capsys, "submit", str(tmp_path / "long.json"), "--json")
    run_id = json.loads(out)["id"]
    try:
        assert code == 0
        code, out, err = run_li2(live_service, carol, capsys, "wait", run_id, "--timeout", "1", "--quiet")
        assert code == 5 and "did not finish" in err and out.startswith(f"{run_id}: still ")
        code, out, _ = run_li2(
            live_service, carol, capsys, "submit", str(tmp_path / "long.json"), "--wait", "--timeout", "1"
        )
        assert code == 5  # the same code through submit --wait (cached: the same run)
    finally:
        run_li2(live_service, carol, capsys, "cancel", run_id)
    code, out, _ = run_li2(live_service, carol, capsys, "wait", run_id, "--timeout", "120", "--quiet")
    assert code == 4 and out.startswith(f"{run_id}: cancelled")


def test_run_exit_codes_are_distinct_and_documented():
    assert RUN_EXIT == {"succeeded": 0, "failed": 3, "cancelled": 4}
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) and {0, 1, 2, 3, 4, 5} <= set(EXIT_CODES)
    text = build_parser().format_help()
    for code, meaning in EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in text


def test_features_predictions_and_checkpoints(li2, finished_exp):
    code, out, _ = li2("features", finished_exp.id, "--json")
    assert code == 0 and json.loads(out)["spectrum"]["labels"]
    code, out, _ = li2("features", finished_exp.id, "--top", "3")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("coverage: ") and lines[3].split() == ["irrep", "mean", "power", "share"]
    assert len(lines) == 3 + 2 + 3
    code, _, err = li2("features", finished_exp.id, "--top", "0")
    assert code == 2 and "--top must be at least 1" in err
    code, out, _ = li2("predictions", finished_exp.id, "--json")
    assert code == 0 and json.loads(out)["order"] == 11
    code, out, _ = li2("predictions", finished_exp.id)
    assert code == 0 and any(line.split()[:2] == ["order", "11"] for line in out.splitlines())
    code, out, _ = li2("checkpoints", finished_exp.id, "--json")
    stored = json.loads(out)
    assert code == 0 and {c["epoch"] for c in stored} >= {0, finished_exp.spec["training"]["epochs"]}
    code, out, _ = li2("checkpoints", finished_exp.id)
    assert code == 0 and out.splitlines()[0].split() == ["epoch", "kind", "size"]
    assert out.splitlines()[-1] == f"{len(stored)} checkpoint(s)"


def test_plots_writes_pngs_into_the_folder(li2, finished_exp, tmp_path):
    code, out, _ = li2("plots", finished_exp.id, "-o", str(tmp_path / "figs"))
    paths = out.split()
    assert code == 0 and len(paths) == 2 and all(p.startswith(str(tmp_path / "figs")) for p in paths)
    assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_sweep_list_and_cancel(live_service, carol, capsys, tiny, tmp_path):
    doc = {"base": tiny(seed=902, epochs=100000).to_dict(), "grid": {"seed": [903, 904]}}
    (tmp_path / "sweep.json").write_text(json.dumps(doc))
    code, out, _ = run_li2(live_service, carol, capsys, "sweep", "submit", str(tmp_path / "sweep.json"), "--json")
    sweep_id = json.loads(out)["id"]
    code, out, _ = run_li2(live_service, carol, capsys, "sweep", "cancel", sweep_id)
    assert code == 0 and out.startswith(f"sweep {sweep_id}: ")
    code, out, _ = run_li2(live_service, carol, capsys, "sweep", "list", "--json")
    listed = {s["id"]: s for s in json.loads(out)}
    assert code == 0 and sweep_id in listed
    code, out, _ = run_li2(live_service, carol, capsys, "sweep", "list")
    assert code == 0 and out.splitlines()[0].split() == ["id", "status", "runs", "ended", "created"]
    assert any(line.startswith(sweep_id) for line in out.splitlines()) and out.splitlines()[-1].endswith("sweep(s)")
    for run in json.loads(run_li2(live_service, carol, capsys, "sweep", "runs", sweep_id, "--json")[1]):
        code, _, _ = run_li2(live_service, carol, capsys, "wait", run["id"], "--timeout", "120", "--quiet")
        assert code == 4  # every run of the cancelled sweep ends cancelled


def test_every_command_has_an_example_in_its_help():
    parser = build_parser()
    commands = dict(subcommands(parser))
    assert set(commands) == set(EXAMPLES), "add an EXAMPLES entry for each command (and none for others)"
    for words, sub in commands.items():
        text = sub.format_help()
        assert "example:" in text and EXAMPLES[words] in text, words


@pytest.mark.parametrize("doc", ["docs/design.md", "client/README.md"])
def test_the_documented_exit_code_tables_are_the_codes(doc):
    """The exit-code tables in the docs say what EXIT_CODES says (backticks aside)."""
    text = (Path(__file__).resolve().parents[2] / doc).read_text()
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", text, flags=re.M))
    assert {int(k): v.replace("`", "") for k, v in rows.items()} == EXIT_CODES
