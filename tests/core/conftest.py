"""Small specs for the core tests, normalised by the real validator (`make_spec` fixture)."""

import copy

import pytest

from li2.spec import validate_spec


def build_spec(order=11, hidden=32, epochs=30, seed=1, fraction=0.5, diagnostics=False, **sections):
    """A small valid spec. `sections`: 'model'/'training' dicts are merged into the defaults,
    'task'/'data' dicts replace them."""
    raw = {
        "task": {"group": "cyclic", "order": order},
        "data": {"train_fraction": fraction},
        "model": {"hidden": hidden},
        "training": {"epochs": epochs, "diagnostics": diagnostics, "dense_until": 10, "eval_every": 5},
        "seed": seed,
    }
    for name, over in sections.items():
        if name in ("data", "task"):
            raw[name] = dict(over)
        else:
            raw[name].update(over)
    return validate_spec(copy.deepcopy(raw))


@pytest.fixture
def make_spec():
    return build_spec
