"""Typed views of the analysis results the API returns (timeline, features, predictions, scaling law).

Each class keeps the full JSON in ``raw``, so nothing the server adds later is lost, and exposes the
contract's fields (DESIGN.md, ``result.json``) as attributes with types.
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

    ``end_epoch`` is None when the stage had not ended when training stopped (censored).
    ``criterion`` says in words how the boundary was detected; ``values`` holds the numbers used.
    """
    name: str
    start_epoch: int | None
    end_epoch: int | None
    criterion: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Stage":
        def ep(v):
            return None if v is None else int(v)
        return cls(name=str(d.get("name", "")), start_epoch=ep(d.get("start_epoch")),
                   end_epoch=ep(d.get("end_epoch")), criterion=str(d.get("criterion") or ""),
                   values=dict(d.get("values") or {}))


@dataclass(frozen=True)
class Timeline:
    """The three-stage timeline of one run. ``censored`` is truthy when a stage was still open at
    the last epoch (the run was too short to see it end)."""
    stages: list[Stage]
    events: list[dict[str, Any]]
    censored: Any
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Timeline":
        return cls(stages=[Stage.from_dict(s) for s in d.get("stages") or []],
                   events=list(d.get("events") or []), censored=d.get("censored", False), raw=d)

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name``, or None if the run never reached it."""
        return next((s for s in self.stages if s.name == name), None)

    def table(self) -> list[tuple[str, str, str, str]]:
        """Rows (name, start, end, criterion) as strings, for printing."""
        def fmt(v):
            return "—" if v is None else str(v)
        return [(s.name, fmt(s.start_epoch), fmt(s.end_epoch), s.criterion) for s in self.stages]


@dataclass(frozen=True)
class Features:
    """What the hidden nodes learned: per-node irrep (for Z_M: Fourier frequency) decomposition.

    ``spectrum`` maps irrep label → share of the layer's power; ``nodes`` lists per-node entries
    (dominant irrep, concentration, ...); ``coverage`` and ``mean_concentration`` summarise them.
    """
    spectrum: dict[str, float]
    nodes: list[dict[str, Any]]
    coverage: Any
    mean_concentration: float | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Features":
        spec = d.get("spectrum") or d.get("irrep_power") or {}
        if isinstance(spec, list):                        # [{"irrep": label, "power": x}, ...] or [x, ...]
            spec = {str(e.get("irrep", i)) if isinstance(e, dict) else str(i):
                    (e.get("power", e.get("share")) if isinstance(e, dict) else e)
                    for i, e in enumerate(spec)}
        return cls(spectrum={str(k): _num(v) or 0.0 for k, v in spec.items()},
                   nodes=list(d.get("nodes") or []), coverage=d.get("coverage"),
                   mean_concentration=_num(d.get("mean_concentration")), raw=d)


@dataclass(frozen=True)
class Predictions:
    """What the Li2 theory predicts for a spec before it runs (available right after submit)."""
    critical_size: float | None
    train_size: int | None
    regime: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Predictions":
        crit = d.get("critical_size", d.get("n_star"))
        if isinstance(crit, dict):
            crit = crit.get("n_star", crit.get("value"))
        n = d.get("train_size")
        return cls(critical_size=_num(crit), train_size=None if n is None else int(n),
                   regime=d.get("regime") or d.get("expected"), raw=d)


@dataclass(frozen=True)
class CriticalPoint:
    """The measured critical data size for one group order M: ``n_star`` samples (``p_star`` as a
    fraction of all M² pairs) is the smallest size at which runs generalise."""
    M: int
    n_star: float | None
    p_star: float | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "CriticalPoint":
        m = d.get("M", d.get("order", d.get("m")))
        return cls(M=int(m) if m is not None else 0, n_star=_num(d.get("n_star")),
                   p_star=_num(d.get("p_star")), raw=d)


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
    def from_dict(cls, d: dict) -> "ScalingLaw":
        ci = d.get("ci95") or [None, None]
        crit = d.get("critical") or []
        if isinstance(crit, dict):                        # {"23": {...}} → list
            crit = [{"M": k, **v} for k, v in crit.items()]
        return cls(form=str(d.get("form") or "c*M*ln(M)"), c=_num(d.get("c")),
                   ci95=(_num(ci[0]), _num(ci[1])) if len(ci) >= 2 else (None, None),
                   critical=[CriticalPoint.from_dict(p) for p in crit], r2=_num(d.get("r2")),
                   alternatives=d.get("alternatives"), raw=d)

    def predict(self, M: int) -> float | None:
        """n*(M) = c·M·ln M with the fitted c."""
        import math
        return None if self.c is None else self.c * M * math.log(M)
