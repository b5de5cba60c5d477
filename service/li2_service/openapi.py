"""How the OpenAPI document is generated: the Api class, error responses, operation ids and links.

The document is flask-smorest's, built from the marshmallow schemas and the views' decorators;
this module adds what those cannot say by themselves, mechanically, for every operation:

- errors are RFC 7807 problem documents (`application/problem+json`, the `Problem` component):
  flask-smorest's shared responses (UNPROCESSABLE_ENTITY, DEFAULT_ERROR, ...) use it, and
  `problems(blp, {409: "why"})` documents a view's own error statuses with it;
- every operation gets an `operationId`, `<blueprint>_<view function>` (e.g. experiments_submit),
  unless its view sets one; an authenticated operation documents 401 and one with an id in its
  path documents 404;
- `links`: the 200/202 answers of the create operations (CREATES) link to every operation that
  takes the id they return, so generated clients and schemathesis can chain them; LINKS adds the
  others (a checkpoint listing to the download of its first checkpoint);
- ranges with an exclusive bound say so (OpenAPI 3.0's boolean exclusiveMinimum/Maximum), which
  apispec leaves out.
"""

from __future__ import annotations

import http
from collections.abc import Callable

from apispec import BasePlugin
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from marshmallow import fields

from li2.spec.schema import GROUP_FIELDS
from li2_service.errors import PROBLEM_JSON
from li2_service.schemas import ProblemSchema

BINARY = {"type": "string", "format": "binary"}
CSV = {"type": "string", "description": "a header row of column names, then one row per measured epoch"}
# What reading a JSON body can answer (li2_service.body.json_object).
BODY_ERRORS = {
    400: "the body is empty, not valid JSON, or nested too deeply",
    413: "the body is larger than LI2_MAX_BODY_BYTES",
    415: "the body is not sent as application/json",
}

# create operationId -> the path parameter its answer's `id` fills.
CREATES = {"experiments_submit": "exp_id", "sweeps_submit": "sweep_id", "searches_submit": "search_id"}


# operationId -> {linked operationId: {parameter: runtime expression}}: links other than CREATES'.
LINKS = {
    "experiments_list_checkpoints": {
        "experiments_get_checkpoint": {"exp_id": "$request.path.exp_id", "epoch": "$response.body#/0/epoch"}
    }
}


class Li2Api(Api):
    """flask-smorest's Api whose shared error responses are problem documents."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "any other error, as a problem document", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def problems(blp: Blueprint, documented: dict[int, str]) -> Callable:
    """Decorator: document each `status: description` of a view as a problem document."""

    def decorate(view: Callable) -> Callable:
        for status, description in documented.items():
            view = blp.alt_response(status, schema=ProblemSchema, description=description, content_type=PROBLEM_JSON)(
                view
            )
        return view

    return decorate


def location(what: str) -> dict:
    """The Location header of a 202 answer, for `@blp.response(..., headers=location("the run"))`."""
    return {"Location": {"description": f"the URL of {what}", "schema": {"type": "string"}}}


def split_task_kinds(schemas: dict) -> None:
    """Document the Task component as its kinds: `oneOf` one component per group (CyclicTask, ...),
    discriminated by `group`, each with exactly its own fields required (li2.spec.schema.GROUP_FIELDS)
    and the flat Task's property schemas. The validation is TaskSchema's, unchanged; this says in
    the document what its `_kind_fields` check enforces, so clients and fuzzers build valid tasks."""
    flat = schemas["Task"]
    mapping = {}
    for group, own in GROUP_FIELDS.items():
        name = group.capitalize() + "Task"
        props = {"group": {"type": "string", "enum": [group]}, "operands": flat["properties"]["operands"]}
        props.update({f: flat["properties"][f] for f in own})
        schemas[name] = {
            "type": "object",
            "description": f"a task of group {group}",
            "properties": props,
            "required": ["group", *own],
            "additionalProperties": False,
        }
        mapping[group] = f"#/components/schemas/{name}"
    schemas["Task"] = {
        "description": "the group and its size; each group takes its own fields",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "group", "mapping": mapping},
    }


class OperationsPlugin(BasePlugin):
    """apispec plugin: operationIds, the 401/404 every such operation can answer, and the links."""

    def __init__(self) -> None:
        self.creators: dict[str, list[dict]] = {}  # path parameter -> the create answers that return it
        self.takers: dict[str, list[str]] = {}  # path parameter -> operationIds that take it

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        params = list(rule.arguments)
        for method, op in operations.items():
            op.setdefault(
                "operationId", rule.endpoint.replace(".", "_") + ("" if len(operations) == 1 else f"_{method}")
            )
            responses = op.setdefault("responses", {})
            codes = {str(c) for c in responses}
            if op.get("security") != [] and "401" not in codes:
                responses["401"] = "UNAUTHORIZED"
            if params and "404" not in codes:
                responses["404"] = "NOT_FOUND"
            for target, parameters in LINKS.get(op["operationId"], {}).items():
                ok = next(r for code, r in responses.items() if str(code) == "200")
                ok.setdefault("links", {})[target] = {"operationId": target, "parameters": parameters}
            param = CREATES.get(op["operationId"])
            if param:
                self.creators.setdefault(param, []).extend(
                    r for code, r in responses.items() if str(code) in ("200", "201", "202") and isinstance(r, dict)
                )
            for p in params:
                self.takers.setdefault(p, []).append(op["operationId"])
        self._link()

    def _link(self) -> None:
        """(Re)write the links of every create answer: one per operation taking its id."""
        for param, answers in self.creators.items():
            links = {
                op_id: {
                    "operationId": op_id,
                    "parameters": {param: "$response.body#/id"},
                    "description": f"the `id` of this answer is the {param} of {op_id}",
                }
                for op_id in self.takers.get(param, [])
            }
            for answer in answers:
                answer["links"] = dict(links)


def range_exclusivity(self, field: fields.Field, **kwargs) -> dict:
    """apispec attribute function: exclusiveMinimum/Maximum (booleans, OpenAPI 3.0) of a Range."""
    out = {}
    for v in field.validators:
        if getattr(v, "min", None) is not None and getattr(v, "min_inclusive", True) is False:
            out["exclusiveMinimum"] = True
        if getattr(v, "max", None) is not None and getattr(v, "max_inclusive", True) is False:
            out["exclusiveMaximum"] = True
    return out
