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


def _interval(value: Any) -> tuple[float | None, float | None]:
    """[lo, hi] from JSON (None = open end) → a pair of floats or None."""
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        return _num(value[0]), _num(value[1])
    return None, None


@dataclass(frozen=True)
class CriticalPoint:
    """The critical data size for one group order M.

    ``n_star`` is the law's value c·M·ln M (None when the law is not fitted) with its 95 %
    interval ``ci95``; ``free_n_star`` / ``free_ci95`` are this order's own estimate from its runs
    alone, and ``bracket`` the largest failing and smallest succeeding sizes tried. ``p_star`` is
    n*/M² (a fraction of all pairs).
    """

    M: int
    n_star: float | None
    p_star: float | None
    ci95: tuple[float | None, float | None] = (None, None)
    free_n_star: float | None = None
    free_ci95: tuple[float | None, float | None] = (None, None)
    bracket: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> CriticalPoint:
        m = d.get("M", d.get("order", d.get("m")))
        free = d.get("free") or {}
        return cls(
            M=int(m) if m is not None else 0,
            n_star=_num(d.get("n_star")),
            p_star=_num(d.get("p_star")),
            ci95=_interval(d.get("ci95")),
            free_n_star=_num(free.get("n_star")),
            free_ci95=_interval(free.get("ci95")),
            bracket=dict(free.get("bracket") or {}),
            raw=d,
        )


@dataclass(frozen=True)
class ScalingLaw:
    """The joint fit of n* = c·M·ln M over every run of a sweep or search.

    ``status`` is "fitted" only when c is bounded on both sides and its 95 % profile-likelihood
    interval is narrow enough; then ``c`` is a number. Otherwise ("unresolved", "bounded",
    "no_data") ``c`` is None, ``ci95`` is the range of c the data allow (None = open end),
    ``note`` says why and ``missing`` lists what data would resolve it. ``converged`` is the
    verdict of refitting at half the budget ("converged", "not_converged" or "unknown").
    ``alternatives`` and ``comparison`` hold the other forms fitted on the same likelihood.
    """

    form: str
    c: float | None
    ci95: tuple[float | None, float | None]
    critical: list[CriticalPoint]
    r2: float | None
    alternatives: Any
    status: str = "fitted"
    note: str | None = None
    missing: list[str] = field(default_factory=list)
    c_mle: float | None = None
    s: float | None = None
    converged: str = "unknown"
    convergence_note: str | None = None
    by_budget: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)
    goodness_of_fit: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> ScalingLaw:
        crit = d.get("critical") or []
        if isinstance(crit, dict):  # {"23": {...}} → list
            crit = [{"M": k, **v} for k, v in crit.items()]
        c = _num(d.get("c"))
        status = str(d.get("status") or ("fitted" if c is not None else "no_data"))
        convergence = d.get("convergence") or {}
        return cls(
            form=str(d.get("form") or "c*M*ln(M)"),
            c=c,
            ci95=_interval(d.get("ci95")),
            critical=[CriticalPoint.from_dict(p) for p in crit],
            r2=_num(d.get("r2")),
            alternatives=d.get("alternatives"),
            status=status,
            note=d.get("note"),
            missing=[str(m) for m in d.get("missing") or []],
            c_mle=_num(d.get("c_mle")),
            s=_num(d.get("s")),
            converged=str(convergence.get("verdict") or "unknown"),
            convergence_note=convergence.get("note"),
            by_budget=list(d.get("by_budget") or []),
            comparison=dict(d.get("comparison") or {}),
            goodness_of_fit=dict(d.get("goodness_of_fit") or {}),
            raw=d,
        )

    @property
    def fitted(self) -> bool:
        """True only when the law is a fit: ``c`` is a number with a narrow enough interval."""
        return self.status == "fitted" and self.c is not None

    @property
    def reason(self) -> str:
        """Why there is no fit (empty when there is one)."""
        if self.fitted:
            return ""
        return self.note or "; ".join(self.missing) or f"status {self.status}"

    def predict(self, M: int) -> float | None:
        """n*(M) = c·M·ln M with the fitted c (None when the law is not fitted)."""
        import math

        return None if not self.fitted or self.c is None else self.c * M * math.log(M)
