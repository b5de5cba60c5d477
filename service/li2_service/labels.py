"""The owner's labels of a run or sweep: a name, tags and a note, and the rules they must meet.

One schema (`LabelsSchema`) validates them at submit (`li2_service.organise.pop_labels`) and in a
PATCH (`organise_schemas.PatchSchema` adds `archived`), and documents them in the submit bodies
(`schemas.SubmitSchema`, `schemas.SweepSubmitSchema`). Kept apart from `organise_schemas`, which
builds on `schemas`, so that `schemas` can use it too.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$"
TAG_RULE = "1 to 40 characters: letters, digits and _ . : - (starting with a letter or digit)"
MAX_TAGS = 20
NAME_MAX = 100
NOTE_MAX = 4000

TAG = fields.String(validate=validate.Regexp(TAG_PATTERN, error=f"each tag must be {TAG_RULE}"))


class LabelsSchema(Schema):
    """A name, tags and a note: settable at submit, editable by the owner (PATCH)."""

    class Meta:
        unknown = RAISE

    name = fields.String(
        allow_none=True,
        validate=[
            validate.Length(1, NAME_MAX),
            validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="must not contain control characters"),
        ],
        metadata={"description": f"1 to {NAME_MAX} characters, no control characters; null clears it"},
    )
    tags = fields.List(
        TAG,
        validate=validate.Length(0, MAX_TAGS, error=f"at most {MAX_TAGS} tags"),
        metadata={"description": f"replaces the tags; at most {MAX_TAGS}, each {TAG_RULE}"},
    )
    note = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=NOTE_MAX),
            validate.Regexp(
                r"^[^\x00-\x08\x0b-\x1f\x7f]*$", error="must not contain control characters but newline and tab"
            ),
        ],
        metadata={"description": f"free text, at most {NOTE_MAX} characters; null clears it"},
    )

    @validates_schema
    def _distinct_tags(self, data, **kwargs):
        tags = data.get("tags") or []
        if len(set(tags)) != len(tags):
            raise ValidationError("each tag at most once", "tags")
