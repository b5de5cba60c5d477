"""The typed spec builder assembles exactly the contract's JSON and never mutates a shared base."""

import pytest

from li2_client import Spec, SpecBuilder
from li2_client.builder import SECTION_FIELDS, as_spec_dict


def test_builder_matches_the_design_example():
    spec = (
        Spec.cyclic(23)
        .train_fraction(0.9)
        .model(hidden=512, activation="sqr")
        .adam(lr=0.01, weight_decay=1e-4)
        .epochs(300)
        .loss("mse")
        .seed(5)
        .to_dict()
    )
    assert spec == {
        "task": {"group": "cyclic", "order": 23},
        "data": {"train_fraction": 0.9},
        "model": {"hidden": 512, "activation": "sqr"},
        "training": {"optimizer": "adam", "lr": 0.01, "weight_decay": 1e-4, "epochs": 300, "loss": "mse"},
        "seed": 5,
    }


def test_each_step_returns_a_new_builder():
    base = Spec.cyclic(11).epochs(100)
    a, b = base.seed(1), base.seed(2)
    assert "seed" not in base.to_dict()
    assert (a.to_dict()["seed"], b.to_dict()["seed"]) == (1, 2)
    d = base.to_dict()
    d["task"]["order"] = 99  # the dict is a copy
    assert base.to_dict()["task"]["order"] == 11


def test_data_size_fields_replace_each_other():
    spec = Spec.cyclic(11).train_fraction(0.5).train_size(40).to_dict()
    assert spec["data"] == {"train_size": 40}
    assert Spec.cyclic(11).critical_multiple(2).to_dict()["data"] == {"critical_multiple": 2.0}


def test_other_groups_and_options():
    assert Spec.product(3, 5).to_dict()["task"] == {"group": "product", "factors": [3, 5]}
    assert Spec.dihedral(4).operands(3).to_dict()["task"] == {"group": "dihedral", "n": 4, "operands": 3}
    assert Spec.expression("x**2+y", 7).to_dict()["task"] == {
        "group": "expression",
        "expression": "x**2+y",
        "modulus": 7,
    }
    assert Spec.cyclic(5).muon(lr=0.02).to_dict()["training"] == {"optimizer": "muon", "lr": 0.02}
    assert Spec.cyclic(5).model(extra_layers=1).to_dict()["model"] == {"extra_layers": 1}


def test_as_spec_dict_rejects_other_types():
    assert as_spec_dict({"a": 1}) == {"a": 1}
    assert isinstance(Spec.cyclic(3), SpecBuilder)
    with pytest.raises(TypeError, match="dict or a SpecBuilder"):
        as_spec_dict("cyclic 23")


@pytest.mark.parametrize(
    ("build", "field", "section"),
    [
        (lambda: Spec.cyclic(23).model(hiden=64), "hiden", "model"),
        (lambda: Spec.cyclic(23).optimizer("sgd", momentun=0.9), "momentun", "training"),
        (lambda: Spec.cyclic(23).schedule("step", stepsize=10), "stepsize", "training"),
        (lambda: Spec.cyclic(23).training(epoch=10), "epoch", "training"),
    ],
)
def test_unknown_fields_raise_at_once_naming_the_allowed_ones(build, field, section):
    with pytest.raises(TypeError) as err:
        build()
    message = str(err.value)
    assert repr(field) in message and f"unknown {section} field" in message
    for allowed in SECTION_FIELDS[section]:
        assert allowed in message.split("allowed:", 1)[1]


def test_a_near_miss_gets_a_suggestion():
    with pytest.raises(TypeError, match="did you mean 'hidden'"):
        Spec.cyclic(23).model(hiden=64)


def test_every_known_field_is_accepted_and_written():
    spec = (
        Spec.cyclic(11)
        .model(extra_layers=1, ridge_top=1e-3)
        .optimizer("sgd", momentum=0.5)
        .schedule("step", step_size=10, gamma=0.5)
        .training(dense_until=50, diagnostics_every=10)
        .to_dict()
    )
    assert spec["model"] == {"extra_layers": 1, "ridge_top": 1e-3}
    assert spec["training"] == {
        "optimizer": "sgd",
        "momentum": 0.5,
        "schedule": "step",
        "step_size": 10,
        "gamma": 0.5,
        "dense_until": 50,
        "diagnostics_every": 10,
    }


def test_the_builder_knows_exactly_the_servers_fields():
    """The SDK keeps its own list (it installs without the server); it must equal the schema's."""
    from li2.spec.schema import ModelSchema, TrainingSchema

    assert set(SECTION_FIELDS["model"]) == set(ModelSchema().fields)
    assert set(SECTION_FIELDS["training"]) == set(TrainingSchema().fields)
