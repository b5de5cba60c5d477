"""A small typed builder for experiment specs, so a notebook gets completion instead of typos.

    Spec.cyclic(23).train_fraction(0.9).model(hidden=512, activation="sqr") \
        .adam(lr=0.01, weight_decay=1e-4).epochs(300).seed(5).to_dict()

Each call returns a *new* builder (the original is unchanged), so one base can seed many variants.
The builder assembles the JSON of the spec contract (docs/design.md in the server's repo). A field
name the contract does not have raises ``TypeError`` at once, naming it and the allowed ones, so
``.model(hiden=64)`` fails on the line that has the typo. Values are checked by the server, which
answers every mistake with the field name and the allowed values (``ValidationError.errors``).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from typing import Any

# The fields of each spec section the builder writes (the contract's names; the server's schema is
# the authority on values and defaults, and tests/client/test_builder.py keeps these lists equal
# to it). The SDK carries its own copy because it must install without the server's packages.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "model": (
        "hidden",
        "activation",
        "extra_layers",
        "top_init_scale",
        "output_scale",
        "embedding_trainable",
        "ridge_top",
    ),
    "training": (
        "optimizer",
        "lr",
        "weight_decay",
        "epochs",
        "loss",
        "schedule",
        "step_size",
        "gamma",
        "milestones",
        "momentum",
        "eval_every",
        "dense_until",
        "checkpoint_epochs",
        "diagnostics",
        "diagnostics_every",
        "success_threshold",
        "success_rule",
        "success_window",
        "precision",
        "early_stop",
    ),
}


def check_fields(section: str, names: Sequence[str], method: str) -> None:
    """Raise TypeError naming the first name that is not a field of `section`, and the allowed ones."""
    allowed = SECTION_FIELDS[section]
    for name in names:
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{method}() got an unknown {section} field {name!r}{hint}; allowed: {', '.join(allowed)}")


class SpecBuilder:
    """Chainable, immutable spec assembler. Start with one of the ``Spec.<group>`` constructors."""

    def __init__(self, spec: dict[str, Any] | None = None):
        self._spec: dict[str, Any] = copy.deepcopy(spec) if spec else {}

    # -- internal -----------------------------------------------------------------------------
    def _with(self, section: str | None, **values: Any) -> SpecBuilder:
        """A copy with `values` set in `section` (None: at the top level); None values are left out."""
        new = SpecBuilder(self._spec)
        if section is None:
            new._spec.update(values)
        else:
            new._spec.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
        return new

    def _data(self, key: str, value: float) -> SpecBuilder:
        new = SpecBuilder(self._spec)
        new._spec["data"] = {key: value}  # exactly one data-size field, by contract
        return new

    # -- task -----------------------------------------------------------------------------------
    def operands(self, k: int) -> SpecBuilder:
        """Number of operands of the composition a1∘a2∘…∘ak (default 2)."""
        return self._with("task", operands=int(k))

    # -- data size: exactly one of the three ----------------------------------------------------
    def train_fraction(self, fraction: float) -> SpecBuilder:
        """Train on this fraction (0..1) of all input tuples."""
        return self._data("train_fraction", float(fraction))

    def train_size(self, n: int) -> SpecBuilder:
        """Train on exactly n samples."""
        return self._data("train_size", int(n))

    def critical_multiple(self, multiple: float) -> SpecBuilder:
        """Train on multiple × c·M·ln M samples (the paper's critical data size)."""
        return self._data("critical_multiple", float(multiple))

    # -- model ------------------------------------------------------------------------------------
    def model(self, hidden: int | None = None, activation: str | None = None, **extra: Any) -> SpecBuilder:
        """Network options: hidden (K), activation, and any other ``model.*`` field of the contract
        (extra_layers, top_init_scale, output_scale, embedding_trainable, ridge_top)."""
        check_fields("model", list(extra), "model")
        return self._with("model", hidden=hidden, activation=activation, **extra)

    # -- optimizer ---------------------------------------------------------------------------------
    def optimizer(
        self, name: str, lr: float | None = None, weight_decay: float | None = None, **extra: Any
    ) -> SpecBuilder:
        """Any optimizer by name (sgd, adam, adamw, muon) with its training.* options (e.g. momentum)."""
        check_fields("training", list(extra), "optimizer")
        return self._with("training", optimizer=name, lr=lr, weight_decay=weight_decay, **extra)

    def sgd(self, lr: float | None = None, weight_decay: float | None = None) -> SpecBuilder:
        return self.optimizer("sgd", lr, weight_decay)

    def adam(self, lr: float | None = None, weight_decay: float | None = None) -> SpecBuilder:
        return self.optimizer("adam", lr, weight_decay)

    def adamw(self, lr: float | None = None, weight_decay: float | None = None) -> SpecBuilder:
        return self.optimizer("adamw", lr, weight_decay)

    def muon(self, lr: float | None = None, weight_decay: float | None = None) -> SpecBuilder:
        return self.optimizer("muon", lr, weight_decay)

    # -- training -----------------------------------------------------------------------------------
    def epochs(self, n: int) -> SpecBuilder:
        return self._with("training", epochs=int(n))

    def loss(self, name: str) -> SpecBuilder:
        """``mse`` or ``nll``."""
        return self._with("training", loss=name)

    def schedule(self, name: str, **options: Any) -> SpecBuilder:
        """A learning-rate schedule (none, step, multistep, exponential, cosine) with its options
        (step_size, gamma, milestones)."""
        check_fields("training", list(options), "schedule")
        return self._with("training", schedule=name, **options)

    def eval_every(self, n: int) -> SpecBuilder:
        return self._with("training", eval_every=int(n))

    def training(self, **fields: Any) -> SpecBuilder:
        """Any ``training.*`` fields at once, e.g. ``.training(dense_until=100, diagnostics_every=10)``."""
        check_fields("training", list(fields), "training")
        return self._with("training", **fields)

    def seed(self, seed: int) -> SpecBuilder:
        return self._with(None, seed=int(seed))

    # -- output -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict (a copy), ready for ``Client.submit`` or a JSON file."""
        return copy.deepcopy(self._spec)

    def __repr__(self) -> str:
        return f"SpecBuilder({self._spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpecBuilder) and other._spec == self._spec


class Spec:
    """Constructors for each task kind of the spec contract; each returns a ``SpecBuilder``."""

    @staticmethod
    def _task(**task: Any) -> SpecBuilder:
        return SpecBuilder({"task": task})

    @staticmethod
    def cyclic(order: int) -> SpecBuilder:
        """Z_order (modular addition)."""
        return Spec._task(group="cyclic", order=int(order))

    @staticmethod
    def product(*factors: int) -> SpecBuilder:
        """Z_f1 × Z_f2 × …"""
        return Spec._task(group="product", factors=[int(f) for f in factors])

    @staticmethod
    def dihedral(n: int) -> SpecBuilder:
        """D_n, order 2n."""
        return Spec._task(group="dihedral", n=int(n))

    @staticmethod
    def symmetric(n: int) -> SpecBuilder:
        return Spec._task(group="symmetric", n=int(n))

    @staticmethod
    def alternating(n: int) -> SpecBuilder:
        return Spec._task(group="alternating", n=int(n))

    @staticmethod
    def quaternion() -> SpecBuilder:
        return Spec._task(group="quaternion")

    @staticmethod
    def multiplicative(prime: int) -> SpecBuilder:
        """(Z/pZ)^×."""
        return Spec._task(group="multiplicative", prime=int(prime))

    @staticmethod
    def table(table: Sequence[Sequence[int]]) -> SpecBuilder:
        """A group given by its Cayley table (the server checks the axioms)."""
        return Spec._task(group="table", table=[list(map(int, row)) for row in table])

    @staticmethod
    def expression(expression: str, modulus: int) -> SpecBuilder:
        """f(x, y) mod modulus — parsed safely by the server, never evaluated."""
        return Spec._task(group="expression", expression=str(expression), modulus=int(modulus))


def as_spec_dict(spec: SpecBuilder | dict[str, Any]) -> dict[str, Any]:
    """Accept a builder or a plain dict wherever a spec is expected."""
    if isinstance(spec, SpecBuilder):
        return spec.to_dict()
    if isinstance(spec, dict):
        return spec
    raise TypeError(f"a spec must be a dict or a SpecBuilder, not {type(spec).__name__}")
