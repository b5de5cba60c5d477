"""Experiment and sweep specs: what a valid experiment is, with every default filled in.

The CLI, the API and the worker all validate with this package, and it imports no torch or numpy,
so the API process can validate without loading the training stack. Its modules, by concern:

    schema      the marshmallow schemas (fields, defaults, allowed values) and their error messages
    limits      M and n of a spec, and the LI2_MAX_* bounds that protect a shared server
    validate    `validate_spec`: raw dict -> normalised spec, or a SpecError naming each field
    hashing     `spec_hash`: the canonical hash of a normalised spec
    sweep       `validate_sweep` and `expand_sweep`: a grid over a base spec

How validated specs become batches on a device is `li2.batching`.
"""

from li2.errors import SpecError
from li2.spec.hashing import spec_hash
from li2.spec.limits import limits, resolve_train_size, task_order
from li2.spec.schema import ExperimentSpecSchema, SweepSchema
from li2.spec.sweep import expand_sweep, validate_sweep
from li2.spec.validate import validate_spec

__all__ = [
    "ExperimentSpecSchema",
    "SpecError",
    "SweepSchema",
    "expand_sweep",
    "limits",
    "resolve_train_size",
    "spec_hash",
    "task_order",
    "validate_spec",
    "validate_sweep",
]
