"""li2.spec: every kind of bad spec is rejected with a field-named message; good specs normalise."""

import json
import subprocess
import sys

import pytest

from li2.batching import batch_key
from li2.errors import SpecError
from li2.spec import expand_sweep, resolve_train_size, spec_hash, validate_spec, validate_sweep
from li2.theory import C_CRIT

BASE = {
    "task": {"group": "cyclic", "order": 23},
    "data": {"train_fraction": 0.9},
    "model": {"hidden": 512, "activation": "sqr"},
    "training": {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "epochs": 300, "loss": "mse"},
    "seed": 5,
}


def errors_of(raw):
    with pytest.raises(SpecError) as info:
        validate_spec(raw)
    return info.value.errors


def with_(path, value, base=BASE):
    raw = json.loads(json.dumps(base))
    node = raw
    *head, last = path.split(".")
    for p in head:
        node = node.setdefault(p, {})
    node[last] = value
    return raw


def test_normalised_spec_is_complete_and_idempotent():
    spec = validate_spec(BASE)
    assert spec["task"] == {"group": "cyclic", "operands": 2, "order": 23}
    assert spec["training"]["schedule"] == "none" and spec["model"]["ridge_top"] is None
    assert validate_spec(spec) == spec
    assert spec_hash(validate_spec(spec)) == spec_hash(spec)


def test_defaults_mean_the_same_experiment_hash_the_same():
    explicit = with_("model.extra_layers", 0)
    assert spec_hash(validate_spec(explicit)) == spec_hash(validate_spec(BASE))
    assert spec_hash(validate_spec(with_("seed", 6))) != spec_hash(validate_spec(BASE))


def test_train_size_follows_the_reference_split():
    # sklearn's train_test_split(test_size=0.1) on 529 samples leaves 476 for training
    # (the reference run's logged split).
    assert resolve_train_size(validate_spec(BASE)) == 476
    spec = validate_spec(with_("data", {"critical_multiple": 1.0}))
    import math

    assert resolve_train_size(spec) == round(C_CRIT * 23 * math.log(23))


@pytest.mark.parametrize(
    "path,value,field,needle",
    [
        ("bogus", 1, "bogus", "allowed here: task, data, model, training, seed"),
        ("model.hiden", 3, "model.hiden", "hidden"),
        ("task.group", "cyclick", "task.group", "cyclic"),
        ("task.n", 3, "task.n", "takes: order"),
        ("training.lr", float("nan"), "training.lr", "nan"),
        ("training.lr", -1, "training.lr", "greater than"),
        ("training.optimizer", "rmsprop", "training.optimizer", "muon"),
        ("model.activation", "gelu", "model.activation", "relusqr"),
        ("training.loss", "hinge", "training.loss", "nll"),
        ("training.epochs", 10**9, "training.epochs", "LI2_MAX_EPOCHS"),
        ("model.hidden", 10**6, "model.hidden", "LI2_MAX_HIDDEN"),
        ("task.order", 5000, "task.order", "LI2_MAX_ORDER"),
        ("task.operands", 9, "task.operands", "LI2_MAX_OPERANDS"),
        ("data", {"train_fraction": 0.5, "train_size": 3}, "data", "exactly one"),
        ("data", {}, "data", "exactly one"),
        ("data", {"train_size": 529}, "data.train_size", "between 1 and 528"),
        ("data", {"train_fraction": 1.0}, "data.train_fraction", "less than 1"),
        ("data", {"train_fraction": 0.001}, "data.train_fraction", "between 1 and 528"),
        ("training.schedule", "step", "training.step_size", "required"),
        ("training.milestones", [50, 10], "training.milestones", "ascending"),
        ("training.checkpoint_epochs", [5000], "training.checkpoint_epochs", "training.epochs"),
        ("seed", "five", "seed", "integer"),
        ("seed", 1.5, "seed", "integer"),
    ],
)
def test_bad_fields_are_named_with_what_is_allowed(path, value, field, needle):
    errs = errors_of(with_(path, value))
    assert field in errs, errs
    assert needle.lower() in " ".join(errs[field]).lower(), errs


def test_ridge_top_needs_mse():
    errs = errors_of(with_("training.loss", "nll", with_("model.ridge_top", 0.1)))
    assert "model.ridge_top" in errs


@pytest.mark.parametrize("raw", [None, [], "spec", 5, {"task": "cyclic"}, {"task": None}])
def test_non_objects_are_rejected(raw):
    with pytest.raises(SpecError):
        validate_spec(raw)


def test_expressions_take_two_operands():
    errs = errors_of({"task": {"group": "expression", "expression": "x*y", "modulus": 7, "operands": 3}})
    assert "2 operands" in errs["task.operands"][0]


def test_every_group_kind_needs_its_own_fields():
    for task, field in [
        ({"group": "product"}, "task.factors"),
        ({"group": "dihedral"}, "task.n"),
        ({"group": "multiplicative"}, "task.prime"),
        ({"group": "table"}, "task.table"),
        ({"group": "expression", "modulus": 7}, "task.expression"),
    ]:
        assert field in errors_of({"task": task})
    assert "task.order" in errors_of({"task": {"group": "quaternion", "order": 8}})


def test_sweep_expands_the_grid_and_batches_by_shape():
    sweep = validate_sweep(
        {"base": BASE, "grid": {"task.order": [11, 13], "data.train_size": [40, 60], "seed": [1, 2]}}
    )
    specs = expand_sweep(sweep)
    assert len(specs) == 8
    assert [s["task"]["order"] for s in specs[:4]] == [11] * 4
    assert all(s["data"]["train_fraction"] is None for s in specs)
    # seeds and training sizes share a (ragged) batch; the order changes the shapes.
    assert len({batch_key(s) for s in specs}) == 2
    assert batch_key(specs[0]) == batch_key(specs[1]) == batch_key(specs[3])


def test_lr_wd_and_init_scale_share_a_batch_but_width_does_not():
    a = validate_spec(BASE)
    for path, value in [
        ("training.lr", 0.02),
        ("training.weight_decay", 0.0),
        ("model.top_init_scale", 0.0),
        ("model.output_scale", 2.0),
        ("training.momentum", 0.5),
        ("training.schedule", "cosine"),
    ]:
        assert batch_key(validate_spec(with_(path, value))) == batch_key(a)
    assert batch_key(validate_spec(with_("model.hidden", 256))) != batch_key(a)


@pytest.mark.parametrize(
    "grid,field",
    [
        ({}, "grid"),
        ({"task.ordr": [1]}, "grid.task.ordr"),
        ({"seed": []}, "grid.seed"),
        ({"seed": list(range(40)), "training.lr": [0.1] * 40}, "grid"),
    ],
)
def test_bad_sweeps_name_the_grid_field(grid, field):
    with pytest.raises(SpecError) as info:
        validate_sweep({"base": BASE, "grid": grid})
    assert field in info.value.errors


def test_a_bad_grid_point_names_its_values():
    with pytest.raises(SpecError) as info:
        validate_sweep({"base": BASE, "grid": {"task.order": [11, 1]}})
    assert any("task.order=1" in k for k in info.value.errors)


def test_validation_does_not_import_torch():
    code = (
        "import sys, li2.spec; li2.spec.validate_spec({'task': {'group': 'cyclic', 'order': 7}}); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_memory_estimate_grows_with_width_and_data():
    from li2.batching import run_memory_bytes

    small = validate_spec(BASE)
    assert run_memory_bytes(validate_spec(with_("model.hidden", 1024))) > run_memory_bytes(small)
    assert run_memory_bytes(validate_spec(with_("task.order", 97))) > run_memory_bytes(small)
    # Z_97, K=512, 40 % train: parameters alone are 6·(194·512 + 512·97) floats ≈ 3.6 MB.
    big = validate_spec(with_("data", {"train_fraction": 0.4}, with_("task.order", 97)))
    assert 3.6e6 < run_memory_bytes(big) < 1e9


def test_batches_respect_shape_count_and_memory_limits():
    from li2.batching import pack_batches, run_memory_bytes

    specs = expand_sweep(validate_sweep({"base": BASE, "grid": {"task.order": [11, 13], "seed": list(range(10))}}))
    entries = [(batch_key(s), s, i) for i, s in enumerate(specs)]
    by_count = pack_batches(entries, max_batch=4, memory_bytes=1 << 40)
    assert sorted(len(b) for b in by_count) == [2, 2, 4, 4, 4, 4]
    assert all(len({specs[i]["task"]["order"] for i in b}) == 1 for b in by_count)
    assert sorted(i for b in by_count for i in b) == list(range(20))
    three_runs = 3 * max(run_memory_bytes(s) for s in specs)
    by_memory = pack_batches(entries, max_batch=64, memory_bytes=three_runs)
    assert max(len(b) for b in by_memory) == 3
    assert all(len(b) == 1 for b in pack_batches(entries, max_batch=64, memory_bytes=1))  # never empty


def test_the_packer_mixes_sizes_in_size_order_unless_ragged_packing_is_off(monkeypatch):
    from li2.batching import RAGGED_ENV, pack_batches, run_memory_bytes

    sizes = [70, 20, 50, 30, 60, 40]
    specs = expand_sweep(validate_sweep({"base": BASE, "grid": {"data.train_size": sizes, "seed": [1, 2]}}))
    entries = [(batch_key(s), s, i) for i, s in enumerate(specs)]
    size_of = lambda i: specs[i]["data"]["train_size"]  # noqa: E731
    (one,) = pack_batches(entries, max_batch=64, memory_bytes=1 << 40)
    assert [size_of(i) for i in one] == sorted(size_of(i) for i in range(12))  # one batch, smallest first
    by_count = pack_batches(entries, max_batch=4, memory_bytes=1 << 40)
    assert [[size_of(i) for i in b] for b in by_count] == [[20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]
    # the memory cap counts every run at the batch's padded sizes (largest n, largest test set)
    padded = run_memory_bytes(specs[0], 70, 23**2 - 20)
    assert all(len(b) <= 4 for b in pack_batches(entries, max_batch=64, memory_bytes=4 * padded))
    monkeypatch.setenv(RAGGED_ENV, "0")  # the packing before ragged batches: one size per batch
    exact = pack_batches(entries, max_batch=64, memory_bytes=1 << 40)
    assert len(exact) == 6 and all(len({size_of(i) for i in b}) == 1 for b in exact)


def test_early_stop_is_an_opt_in_spec_field_and_a_sweep_option():
    assert validate_spec(BASE)["training"]["early_stop"] is None
    rule = validate_spec(with_("training.early_stop", {"patience_epochs": 20}))["training"]["early_stop"]
    assert rule == {"threshold": 0.99, "patience_epochs": 20}
    assert spec_hash(validate_spec(with_("training.early_stop", {}))) != spec_hash(validate_spec(BASE))
    # Off (null), a spec hashes as it did before the field existed: stored runs still dedup.
    before = validate_spec(BASE)
    before["training"] = {k: v for k, v in before["training"].items() if k != "early_stop"}
    assert spec_hash(validate_spec(BASE)) == spec_hash(before)
    for bad, field in [
        ({"patience_epochs": 0}, "training.early_stop.patience_epochs"),
        ({"threshold": 1.5}, "training.early_stop.threshold"),
        ({"epochs": 3}, "training.early_stop.epochs"),
    ]:
        with pytest.raises(SpecError) as info:
            validate_spec(with_("training.early_stop", bad))
        assert field in info.value.errors, info.value.errors
    assert "patience_epochs" in str(info.value.errors)  # the unknown field's message names the allowed ones
    sweep = validate_sweep({"base": BASE, "grid": {"seed": [1, 2]}, "early_stop": {"threshold": 0.9}})
    assert all(s["training"]["early_stop"] == {"threshold": 0.9, "patience_epochs": 30} for s in expand_sweep(sweep))
    assert all(
        s["training"]["early_stop"] is None for s in expand_sweep(validate_sweep({"base": BASE, "grid": {"seed": [1]}}))
    )
