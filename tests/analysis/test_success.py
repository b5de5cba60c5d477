"""The success rule: generalized *and still generalized at the end of the budget* (a spec field)."""

import pytest

from li2.errors import SpecError
from li2.scaling.success import summarize_success
from li2.spec import validate_spec


def spec(epochs=1000, **success):
    return validate_spec(
        {
            "task": {"group": "cyclic", "order": 11},
            "data": {"train_fraction": 0.5},
            "training": {"epochs": epochs, **success},
        }
    )


def curve(values, every=100):
    """test_acc measured every `every` epochs (0, 100, ..., and the last epoch)."""
    epochs = [i * every for i in range(len(values))]
    return {"epoch": epochs, "test_acc": list(values)}


# Reaches 1.0 at epoch 500, ends at 0.937 (the run from issue 10): generalized, then lost it.
LOST = curve([0.0, 0.1, 0.5, 0.9, 0.99, 1.0, 1.0, 0.99, 0.97, 0.95, 0.937])
KEPT = curve([0.0, 0.1, 0.5, 0.9, 0.99, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
DIP = curve([0.0, 0.1, 0.5, 0.99, 1.0, 0.98, 1.0, 1.0, 1.0, 1.0, 1.0])  # dips once before the last stretch


def test_spec_defaults_and_bounds():
    tr = spec()["training"]
    assert (tr["success_threshold"], tr["success_rule"], tr["success_window"]) == (0.99, "held", 0.1)
    for bad in ({"success_rule": "sometimes"}, {"success_threshold": 0.0}, {"success_window": 1.5}):
        with pytest.raises(SpecError) as err:
            spec(**bad)
        assert f"training.{next(iter(bad))}" in err.value.errors


def test_a_run_that_generalized_and_lost_it_is_not_a_success_but_is_flagged():
    s = summarize_success(LOST, spec())
    assert s["grokked"] is False and s["generalization_lost"] is True and s["epoch_success"] is None
    kept = summarize_success(KEPT, spec())
    assert kept["grokked"] is True and kept["generalization_lost"] is False and kept["epoch_success"] == 400
    # The old rule ("ever") counts the lost run; "final" looks at the last measurement only.
    assert summarize_success(LOST, spec(success_rule="ever"))["grokked"] is True
    assert summarize_success(LOST, spec(success_rule="final"))["grokked"] is False


def test_held_looks_at_the_last_window_only():
    assert summarize_success(DIP, spec())["grokked"] is True  # the dip at 500 is outside the last 10 %
    assert summarize_success(DIP, spec())["epoch_success"] == 600
    assert summarize_success(DIP, spec(success_window=0.6))["grokked"] is False  # now it is inside
    assert summarize_success(DIP, spec(success_window=0.5))["grokked"] is False  # the window's first epoch counts
    assert summarize_success(DIP, spec(success_threshold=0.999, success_rule="final"))["grokked"] is True
    assert summarize_success(KEPT, spec(success_threshold=1.0))["epoch_success"] == 500


def test_success_at_shorter_budgets_from_the_same_curve():
    by = {b["fraction"]: b for b in summarize_success(KEPT, spec())["success_by_budget"]}
    assert set(by) == {0.25, 0.5, 1.0}
    assert by[0.25]["epochs"] == 250 and by[0.25]["success"] is False  # measured 0..200: below 0.99
    assert by[0.5]["epochs"] == 500 and by[0.5]["success"] is True  # measured 0..500
    assert by[0.5]["epoch_generalized"] == 400 and by[1.0]["epoch_generalized"] == 400
    lost = {b["fraction"]: b["success"] for b in summarize_success(LOST, spec())["success_by_budget"]}
    assert lost == {0.25: False, 0.5: True, 1.0: False}  # at T/2 it still looked generalized


def test_missing_and_nan_measurements_never_count_as_success():
    metrics = {"epoch": [0, 100, 200], "test_acc": [0.0, None, float("nan")]}
    s = summarize_success(metrics, spec(epochs=300))
    assert s["grokked"] is False and s["generalization_lost"] is False
    assert summarize_success({"epoch": [], "test_acc": []}, spec())["grokked"] is False


def test_specs_stored_before_the_success_fields_get_the_defaults():
    from li2.scaling.success import rule_of

    assert rule_of({"training": {"epochs": 100}}) == {
        "metric": "test_acc",
        "threshold": 0.99,
        "rule": "held",
        "window": 0.1,
    }
    assert rule_of({}) == rule_of({"training": {}})
