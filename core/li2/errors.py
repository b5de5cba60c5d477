"""The one error type for bad experiment input.

Every validation failure anywhere in the core (spec fields, Cayley tables, expressions) raises
`SpecError`, whose `errors` maps a dotted field path to messages that name what is allowed. The
API turns it into a 422 answer, the CLI into exit status 2.
"""


class SpecError(ValueError):
    """Invalid experiment input. `errors`: {"task.order": ["must be an integer between 2 and 512"]}."""

    def __init__(self, errors: dict[str, list[str]] | str, field: str = "_schema"):
        if isinstance(errors, str):
            errors = {field: [errors]}
        self.errors = {k: list(v) if isinstance(v, (list, tuple)) else [str(v)] for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(self.errors.items())))
