"""Documentation schemas of a run's analysis answers: metrics, timeline, features, predictions, laws.

The answers themselves are the stored results (written by the worker, passed through `json_safe`),
so these schemas describe them for the OpenAPI document and for generated clients; they are not
used to dump. Every number may be null (a NaN or a quantity that does not apply is stored as null),
and each object admits further members (`unknown = INCLUDE`: additionalProperties), because the
science adds diagnostics over time and a client must not break on a new key.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields


class _Open(Schema):
    class Meta:
        unknown = INCLUDE


def _num(description: str | None = None) -> fields.Float:
    return fields.Float(allow_none=True, metadata={"description": description} if description else {})


def _int(description: str | None = None) -> fields.Integer:
    return fields.Integer(allow_none=True, metadata={"description": description} if description else {})


# ---------------------------------------------------------------------------------- metrics


class MetricsSchema(Schema):
    columns = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Float(allow_none=True)),
        metadata={"description": "{name: [values]}, one value per measured epoch (null: not measured then)"},
    )
    status = fields.String(metadata={"description": "the run's status when these rows were read"})
    complete = fields.Boolean(
        metadata={"description": "true once the run has ended: no more rows will come; false while queued or running"}
    )
    last_epoch = fields.Integer(
        allow_none=True,
        metadata={"description": "the newest epoch in `columns` (else the `since` you sent): pass it as ?since= next"},
    )


# ---------------------------------------------------------------------------------- timeline


class StageSchema(_Open):
    name = fields.String(metadata={"description": "lazy | independent | interactive"})
    start_epoch = _int()
    end_epoch = _int()
    criterion = fields.String(allow_none=True)
    values = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    open = fields.Boolean(metadata={"description": "true when the stage had not ended with the run"})


class TimelineSchema(_Open):
    stages = fields.List(fields.Nested(StageSchema))
    events = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(allow_none=True),
        metadata={"description": "memorized, generalized, grokking_delay: epochs (null: did not happen)"},
    )
    censored = fields.Boolean(allow_none=True)
    thresholds = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    stalled_in = fields.String(allow_none=True)
    generalized_in = fields.String(allow_none=True)
    emergence = fields.Dict(keys=fields.String(), values=fields.Integer(allow_none=True))


# ---------------------------------------------------------------------------------- features


class IrrepSchema(_Open):
    label = fields.String()
    dim = _int()
    kind = fields.String(allow_none=True)
    rank = _int()


class FeaturesSchema(_Open):
    group = fields.Boolean(metadata={"description": "whether the task is a group (irreps apply)"})
    threshold = _num()
    irreps = fields.List(fields.Nested(IrrepSchema))
    nodes = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw(allow_none=True)),
        metadata={"description": "per hidden node: dominant irrep, concentration, norm2, pairing, emergence ..."},
    )
    mean_concentration = _num()
    concentrated_nodes = _int()
    live_nodes = _int()
    covered = fields.List(fields.String())
    missing = fields.List(fields.String())
    coverage = _num("share of the irreps covered by some node")
    nodes_per_irrep = fields.Dict(keys=fields.String(), values=fields.Integer())
    spectrum = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    memorization = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    pairing = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    energies = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))


# ---------------------------------------------------------------------------------- predictions


class PredictionsSchema(_Open):
    order = _int("M")
    operands = _int()
    c = _num("the constant of n* ≈ c·M·ln M used")
    c_source = fields.String(allow_none=True)
    critical_train_size = _num("n*, the predicted critical training size")
    critical_train_fraction = _num()
    train_size = _int("n of this spec")
    train_to_critical_ratio = _num()
    above_critical = fields.Boolean(allow_none=True)
    hidden = _int()
    group = fields.Boolean(allow_none=True)
    abelian = fields.Boolean(allow_none=True)
    irrep_dims = fields.List(fields.Integer())
    d_max = _int()
    critical_train_size_dk2 = _num()
    width_to_cover_irreps = _int()
    width_formula = fields.String(allow_none=True)
    irrep_classes = _int()
    coupon_collector = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))
    width_sufficient = fields.Boolean(allow_none=True)
    note = fields.String(metadata={"description": "set when predictions are unavailable in this installation"})


# ---------------------------------------------------------------------------------- scaling laws


class CriticalSchema(_Open):
    order = _num("M")
    n_star = _num("the critical training size at M (null: not resolved)")
    ci95 = fields.List(fields.Float(allow_none=True), allow_none=True)
    p_star = _num()


class ScalingLawSchema(_Open):
    """A sweep's or a search's fitted law n* ≈ c·M·ln M (li2.scaling)."""

    status = fields.String(
        allow_none=True, metadata={"description": "fitted | bounded | unresolved ...: `c` is null unless fitted"}
    )
    form = fields.String(allow_none=True)
    c = _num("the fitted constant (null unless status is fitted)")
    ci95 = fields.List(fields.Float(allow_none=True), allow_none=True)
    s = _num()
    critical = fields.List(fields.Nested(CriticalSchema), metadata={"description": "per order M"})
    missing = fields.List(fields.Raw(allow_none=True))
    alternatives = fields.List(fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True)))
    goodness_of_fit = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True)
    by_budget = fields.List(fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True)))
    convergence = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True)
    time_to_grok = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True)
    note = fields.String(allow_none=True)
    partial = fields.Boolean(  # type: ignore[assignment]  # the answer's key, not Schema.partial
        required=True, metadata={"description": "true when fitted now on the runs so far (?partial=true)"}
    )
    n_runs_used = _int("succeeded runs the fit used")
    fitted_at = fields.String(allow_none=True)
