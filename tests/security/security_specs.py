"""The one valid spec the security tests start from (tests copy it and change one thing)."""

VALID_SPEC = {
    "task": {"group": "cyclic", "order": 11},
    "data": {"train_fraction": 0.5},
    "model": {"hidden": 16},
    "training": {"epochs": 20},
    "seed": 1,
}
