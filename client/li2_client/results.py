"""Typed views of the analysis results the API returns (timeline, features, predictions, scaling law).

Each class keeps the full JSON in ``raw``, so nothing the server adds later is lost, and exposes the
contract's fields (``result.json``, docs/design.md in the server's repo) as attributes with types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _num(value: Any) -> float | None:
    """JSON number (or null/NaN) → float or None."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if out != out else out


@dataclass(frozen=True)
class Stage:
    """One stage of the Li2 timeline: ``lazy``, ``independent`` or ``interactive`` feature learning.

    ``open`` is True when the stage had not ended when training stopped (then ``end_epoch`` is the
    last epoch). ``criterion`` names the test that ended it; ``values`` holds the numbers used.
    """

    name: str
    start_epoch: int | None
    end_epoch: int | None
    criterion: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    open: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> Stage:
        def ep(v: Any) -> int | None:
            return None if v is None else int(v)

        return cls(
            name=str(d.get("name", "")),
            start_epoch=ep(d.get("start_epoch")),
            end_epoch=ep(d.get("end_epoch")),
            criterion=str(d.get("criterion") or ""),
            values=dict(d.get("values") or {}),
            open=bool(d.get("open", d.get("end_epoch") is None)),
        )


@dataclass(frozen=True)
class Timeline:
    """The three-stage timeline of one run.

    ``events``: ``{"memorized": epoch, "generalized": epoch, "grokking_delay": epochs}`` (None when
    it did not happen). ``censored`` is True when the run never generalised; ``stalled_in`` then
    names the stage it was stuck in. ``generalized_in`` names the stage where test accuracy got there.
    """

    stages: list[Stage]
    events: dict[str, Any]
    censored: bool
    stalled_in: str | None = None
    generalized_in: str | None = None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Timeline:
        events = d.get("events") or {}
        if isinstance(events, list):  # tolerate a list of {"name", "epoch"}
            events = {str(e.get("name", i)): e.get("epoch") for i, e in enumerate(events)}
        return cls(
            stages=[Stage.from_dict(s) for s in d.get("stages") or []],
            events=dict(events),
            censored=bool(d.get("censored", False)),
            stalled_in=d.get("stalled_in"),
            generalized_in=d.get("generalized_in"),
            raw=d,
        )

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, or None if the run never reached it."""
        return next((s for s in self.stages if s.name == name), None)

    def table(self) -> list[tuple[str, str, str, str]]:
        """Rows (name, start, end, criterion) as strings, for printing; an open stage ends in '…'."""

        def fmt(v: Any) -> str:
            return "—" if v is None else str(v)

        return [
            (s.name, fmt(s.start_epoch), fmt(s.end_epoch) + (" (open)" if s.open else ""), s.criterion)
            for s in self.stages
        ]


@dataclass(frozen=True)
class Features:
    """What the hidden nodes learned: per-node irrep decomposition (Fourier frequencies for Z_M).

    ``labels``: irrep labels; ``power``: per-node share of power in each irrep, rows for the
    largest-norm nodes (node ids in ``spectrum_nodes``); ``coverage``: fraction of non-trivial
    irreps learned by at least one concentrated node, with ``covered`` / ``missing`` labels;
    ``nodes``: per-node columns (dominant, concentration, norm2, pair_error, ...).
    ``is_group`` is False for expression tasks, which have no irreps (see ``raw["note"]``).
    """

    is_group: bool
    labels: list[str]
    power: list[list[float]]
    spectrum_nodes: list[int]
    coverage: float | None
    covered: list[str]
    missing: list[str]
    mean_concentration: float | None
    nodes: dict[str, list]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Features:
        spec = d.get("spectrum") or {}
        return cls(
            is_group=bool(d.get("group", True)),
            labels=[str(x) for x in spec.get("labels") or []],
            power=[[_num(v) or 0.0 for v in row] for row in spec.get("power") or []],
            spectrum_nodes=[int(j) for j in spec.get("nodes") or []],
            coverage=_num(d.get("coverage")),
            covered=list(d.get("covered") or []),
            missing=list(d.get("missing") or []),
            mean_concentration=_num(d.get("mean_concentration")),
            nodes=dict(d.get("nodes") or {}),
            raw=d,
        )

    def layer_spectrum(self) -> dict[str, float]:
        """Mean power share per irrep over the reported nodes (what the spectrum bar chart shows)."""
        if not self.power:
            return {}
        n = len(self.power)
        return {lab: sum(row[k] for row in self.power) / n for k, lab in enumerate(self.labels)}


@dataclass(frozen=True)
class Predictions:
    """What the Li2 theory predicts for a spec before it runs (available right after submit).

    ``critical_train_size`` = c·M·ln M; ``above_critical`` says whether the spec's train size
    reaches it (the theory's guess at whether the run will generalise); ``width_to_cover_irreps``
    is the hidden width Thm 3 needs so every irrep can be learned, ``width_sufficient`` compares
    the spec's width with it (None for non-group tasks).
    """

    order: int | None
    critical_train_size: float | None
    critical_train_fraction: float | None
    train_size: int | None
    above_critical: bool | None
    width_to_cover_irreps: int | None
    width_sufficient: bool | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> Predictions:
        def opt_int(v: Any) -> int | None:
            return None if v is None else int(v)

        def opt_bool(v: Any) -> bool | None:
            return None if v is None else bool(v)

        return cls(
            order=opt_int(d.get("order")),
            critical_train_size=_num(d.get("critical_train_size")),
            critical_train_fraction=_num(d.get("critical_train_fraction")),
            train_size=opt_int(d.get("train_size")),
            above_critical=opt_bool(d.get("above_critical")),
            width_to_cover_irreps=opt_int(d.get("width_to_cover_irreps")),
            width_sufficient=opt_bool(d.get("width_sufficient")),
            raw=d,
        )


@dataclass(frozen=True)
class CriticalPoint:
    """The measured critical data size for one group order M: ``n_star`` samples (``p_star`` as a
    fraction of all M² pairs) is the smallest size at which runs generalise."""

    M: int
    n_star: float | None
    p_star: float | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> CriticalPoint:
        m = d.get("M", d.get("order", d.get("m")))
        return cls(M=int(m) if m is not None else 0, n_star=_num(d.get("n_star")), p_star=_num(d.get("p_star")), raw=d)


@dataclass(frozen=True)
class ScalingLaw:
    """Fit of n* ≈ c·M·ln M over a sweep. ``ci95`` is the bootstrap 95 % interval of ``c``;
    ``alternatives`` are competing forms (e.g. power law) with their goodness of fit."""

    form: str
    c: float | None
    ci95: tuple[float | None, float | None]
    critical: list[CriticalPoint]
    r2: float | None
    alternatives: Any
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> ScalingLaw:
        ci = d.get("ci95") or [None, None]
        crit = d.get("critical") or []
        if isinstance(crit, dict):  # {"23": {...}} → list
            crit = [{"M": k, **v} for k, v in crit.items()]
        return cls(
            form=str(d.get("form") or "c*M*ln(M)"),
            c=_num(d.get("c")),
            ci95=(_num(ci[0]), _num(ci[1])) if len(ci) >= 2 else (None, None),
            critical=[CriticalPoint.from_dict(p) for p in crit],
            r2=_num(d.get("r2")),
            alternatives=d.get("alternatives"),
            raw=d,
        )

    def predict(self, M: int) -> float | None:
        """n*(M) = c·M·ln M with the fitted c."""
        import math

        return None if self.c is None else self.c * M * math.log(M)
