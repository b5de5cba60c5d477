"""`li2lab run` / `sweep` / `search`: files written, bad specs rejected with exit 2 and nothing written."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from li2lab.main import main

SPEC = {
    "task": {"group": "cyclic", "order": 7},
    "data": {"train_fraction": 0.5},
    "model": {"hidden": 16},
    "training": {"epochs": 12, "checkpoint_epochs": [5], "diagnostics": False, "dense_until": 4, "eval_every": 4},
    "seed": 3,
}


def test_run_writes_result_and_checkpoints(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    for key in ("spec", "environment", "dataset", "metrics", "summary", "timeline", "features", "predictions"):
        assert key in result
    assert result["metrics"]["epoch"] == [0, 1, 2, 3, 4, 8, 11]
    assert result["dataset"]["order"] == 7 and result["environment"]["torch"]
    assert result["summary"]["stopped"] is False
    names = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert names == ["epoch_00000.safetensors", "epoch_00005.safetensors", "epoch_00012.safetensors"]
    assert load_file(tmp_path / "out" / "checkpoints" / "epoch_00012.safetensors")["param.W"].shape == (14, 16)


def test_run_accepts_yaml(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "task: {group: quaternion}\ndata: {train_size: 40}\nmodel: {hidden: 8}\n"
        "training: {epochs: 3, diagnostics: false}\nseed: 1\n"
    )
    assert main(["run", str(spec), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "o" / "result.json").read_text())["dataset"]["train_size"] == 40


@pytest.mark.parametrize(
    "bad,fields",
    [
        ({**SPEC, "model": {"hidden": 16, "activation": "tanh"}}, ["model.activation"]),
        ({**SPEC, "task": {"group": "table", "table": [[0, 1], [1, 1]]}}, ["task.table"]),
        (
            {**SPEC, "task": {"group": "expression", "expression": "__import__('os')", "modulus": 5}},
            ["task.expression"],
        ),
        ({**SPEC, "training": {"optimizer": "lbfgs"}, "colour": 1}, ["training.optimizer", "colour"]),
    ],
)
def test_bad_spec_exits_2_names_fields_and_writes_nothing(tmp_path, capsys, bad, fields):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps(bad))
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert all(f in err for f in fields)
    assert not out.exists()


def test_unreadable_or_non_mapping_spec_exits_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    assert main(["run", str(tmp_path / "list.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_sweep_packs_by_shape_and_writes_sweep_json(tmp_path):
    sweep = {"base": SPEC, "grid": {"task.order": [5, 7], "seed": [1, 2, 3]}}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep))
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--device", "cpu", "--batch-size", "2"]) == 0
    doc = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert len(doc["runs"]) == 6 and "scaling_law" in doc
    assert [r["spec"]["task"]["order"] for r in doc["runs"]] == [5, 5, 5, 7, 7, 7]
    assert sorted(p.name for p in (tmp_path / "s" / "runs").iterdir()) == [f"{i}.json" for i in range(6)]


@pytest.mark.slow
def test_search_runs_rounds_locally_and_resumes_without_retraining(tmp_path, capsys):
    """`li2lab search`: the service's planner in a local loop; a second call reuses every run."""
    search = {
        "base": {
            "model": {"hidden": 32},
            "training": {
                "optimizer": "adam",
                "lr": 0.05,
                "weight_decay": 1e-3,
                "epochs": 120,
                "eval_every": 10,
                "dense_until": 0,
                "diagnostics": False,
            },
            "seed": 1,
        },
        "orders": [11],
        "seeds": 1,
        "tolerance": 0.3,
        "max_runs": 8,
        "initial_points": 3,
        "points_per_round": 2,
    }
    path = tmp_path / "search.json"
    path.write_text(json.dumps(search))
    out = tmp_path / "s"
    code = main(["search", str(path), "--out", str(out), "--device", "cpu"])
    doc = json.loads((out / "search.json").read_text())
    law = doc["scaling_law"]
    assert code == (0 if law["status"] == "fitted" else 1)
    assert 3 < doc["n_runs"] <= 8 and doc["trained"] == doc["n_runs"] and doc["reused"] == 0
    assert len(doc["rounds"]) >= 3 and doc["stop"] in ("tolerance", "max_runs", "max_rounds")  # two trained rounds
    assert len(list((out / "runs").iterdir())) == doc["n_runs"]
    assert "round 0: 3 runs" in capsys.readouterr().out
    main(["search", str(path), "--out", str(out), "--device", "cpu"])
    again = json.loads((out / "search.json").read_text())
    assert again["trained"] == 0 and again["reused"] == doc["n_runs"] and again["scaling_law"]["ci95"] == law["ci95"]


def test_search_with_a_bad_request_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"base": SPEC, "orders": [11], "tolerance": 0}))
    assert main(["search", str(path), "--out", str(tmp_path / "s")]) == 2
    assert "tolerance" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_cli_import_does_not_import_torch():
    code = "import sys, li2lab.main; li2lab.main.build_parser(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_of_a_delegated_subcommand_reaches_its_owner():
    proc = subprocess.run([sys.executable, "-m", "li2lab", "users", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "create" in proc.stdout


def test_share_sets_a_users_weight_and_high_allowance(tmp_path, monkeypatch, capsys):
    from li2lab.main import main as li2lab

    monkeypatch.setenv("LI2_DATABASE_URL", f"sqlite:///{tmp_path / 'li2.sqlite'}")
    assert li2lab(["users", "create", "alice"]) == 0
    capsys.readouterr()
    assert li2lab(["share", "alice", "--weight", "2.5", "--high", "3"]) == 0
    assert capsys.readouterr().out.strip() == "alice: weight 2.5, high allowance 3"
    assert li2lab(["share", "alice"]) == 0
    assert "weight 2.5" in capsys.readouterr().out
    assert li2lab(["share", "nobody"]) == 1
    with pytest.raises(SystemExit) as bad:
        li2lab(["share", "alice", "--weight", "0"])
    assert bad.value.code == 2 and "--weight must be a number > 0" in capsys.readouterr().err
