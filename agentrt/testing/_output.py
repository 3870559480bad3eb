"""Structured outputs in the fake: ``output_config.format`` checked as the API checks it, and
a scripted ``Reply(output=...)`` sent as the JSON text answer.

The API takes a subset of JSON Schema (its constrained decoding compiles it to a grammar)
and refuses the rest with a 400 before answering. The rules checked here are those whose
messages are known from the API (quoted in projects that hit them); the messages keep its
wording: ``output_config.format.schema: For 'object' type, 'additionalProperties' must be
explicitly set to false``, ``... For 'integer' type, property 'minimum' is not supported``,
``... For 'array' type, 'minItems' values other than 0 or 1 are not supported``, ``...
Invalid schema: Schema type is missing for schema: ...``.

A reply's ``output`` is checked against the request's schema before it is sent: the API's
decoding cannot produce an answer outside it, so a script that does is a mistake of the
test (a 500 naming the path). An answer the schema allows and the client's validator does
not (a ``minimum`` the SDK moved into a description) is a real case: script it with
``output``; JSON that does not even parse (a cut-off answer), with ``text``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._script import Reply

__all__ = ["check_output_config", "schema_problem", "scripted_output"]

_WHERE = "output_config.format.schema"
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
# keywords the API refuses, by type (the SDK's transform_schema moves them into descriptions)
_UNSUPPORTED = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("minLength", "maxLength"),
    "array": ("maxItems", "uniqueItems"),
}


class SchemaRejected(ValueError):
    """A 400 the API answers for the request's ``output_config``."""


def check_output_config(body: dict[str, Any]) -> None:
    """Raise SchemaRejected (the API's 400 message) for an ``output_config`` it refuses."""
    if "output_config" not in body:
        return
    config = body["output_config"]
    if not isinstance(config, dict):
        raise SchemaRejected("output_config: Input should be a valid dictionary")
    for key in config:
        if key not in ("effort", "format"):
            raise SchemaRejected(f"output_config.{key}: Extra inputs are not permitted")
    form = config.get("format")
    if form is None:
        return
    if not isinstance(form, dict):
        raise SchemaRejected("output_config.format: Input should be a valid dictionary")
    if form.get("type") != "json_schema":
        raise SchemaRejected("output_config.format.type: Input should be 'json_schema'")
    if "schema" not in form:
        raise SchemaRejected(f"{_WHERE}: Field required")
    if not isinstance(form["schema"], dict):
        raise SchemaRejected(f"{_WHERE}: Input should be a valid dictionary")
    for key in form:
        if key not in ("type", "schema"):
            raise SchemaRejected(f"output_config.format.{key}: Extra inputs are not permitted")
    _check_schema(form["schema"], form["schema"].get("$defs", {}))


def _check_schema(schema: Any, defs: Any) -> None:
    if not isinstance(schema, dict):
        raise SchemaRejected(f"{_WHERE}: Invalid schema: a schema must be an object, got "
                             f"{schema!r:.200}")
    for sub in (schema.get("$defs") or {}).values():
        _check_schema(sub, defs)
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
        if not isinstance(defs, dict) or name not in defs:
            raise SchemaRejected(f"{_WHERE}: Invalid schema: unresolvable $ref {ref!r}")
        return
    for key in ("anyOf", "allOf"):
        for sub in schema.get(key) or ():
            _check_schema(sub, defs)
    kind = schema.get("type")
    if kind is None:
        if not any(k in schema for k in ("anyOf", "allOf", "enum", "const")):
            raise SchemaRejected(f"{_WHERE}: Invalid schema: Schema type is missing for "
                                 f"schema: {schema!r:.300}")
        return
    if kind not in _TYPES:
        raise SchemaRejected(f"{_WHERE}: Invalid schema: unknown type {kind!r}")
    for keyword in _UNSUPPORTED.get(kind, ()):
        if keyword in schema:
            raise SchemaRejected(f"{_WHERE}: For '{kind}' type, property '{keyword}' is not "
                                 "supported")
    if kind == "object":
        if schema.get("additionalProperties") is not False:
            raise SchemaRejected(f"{_WHERE}: For 'object' type, 'additionalProperties' must "
                                 "be explicitly set to false")
        for sub in (schema.get("properties") or {}).values():
            _check_schema(sub, defs)
    elif kind == "array":
        if schema.get("minItems", 0) not in (0, 1):
            raise SchemaRejected(f"{_WHERE}: For 'array' type, 'minItems' values other than "
                                 "0 or 1 are not supported")
        if "items" in schema:
            _check_schema(schema["items"], defs)


def schema_problem(value: Any, schema: dict[str, Any], defs: dict[str, Any] | None = None,
                   path: str = "") -> str | None:
    """Where and how ``value`` falls outside ``schema`` (the subset the API takes), or None."""
    defs = schema.get("$defs", {}) if defs is None else defs
    where = path or "(the answer)"
    if "$ref" in schema:
        return schema_problem(value, defs[schema["$ref"].removeprefix("#/$defs/")], defs, path)
    if "anyOf" in schema and all(schema_problem(value, sub, defs, path)
                                 for sub in schema["anyOf"]):
        return f"{where}: matches none of anyOf"
    for sub in schema.get("allOf", ()):
        if (problem := schema_problem(value, sub, defs, path)) is not None:
            return problem
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"{where}: {value!r} is not {schema['const']!r}"
    kind = schema.get("type")
    if kind is not None and not _is(value, kind):
        return f"{where}: expected {kind}, got {type(value).__name__}"
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                return f"{path}.{name}".lstrip(".") + ": required, missing"
        for name, item in value.items():
            if name not in properties:
                return f"{path}.{name}".lstrip(".") + ": not a property of the schema"
            if (problem := schema_problem(item, properties[name], defs,
                                          f"{path}.{name}".lstrip("."))) is not None:
                return problem
    if kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            if (problem := schema_problem(item, schema["items"], defs,
                                          f"{path}.{index}".lstrip("."))) is not None:
                return problem
    return None


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"object": dict, "array": list, "string": str, "boolean": bool,
                "null": type(None)}[kind]
    return isinstance(value, expected)


def scripted_output(reply: Reply, body: dict[str, Any]) -> Reply:
    """``reply`` with its ``output`` as the text answer (JSON), once checked against the
    request's schema; ValueError (the step fails) when the request asked for no format
    or the output is outside it."""
    if reply.output is None:
        return reply
    config = body.get("output_config")
    form = config.get("format") if isinstance(config, dict) else None
    if not isinstance(form, dict):
        raise ValueError("the reply has an output, but the request has no "
                         "output_config.format: the model was not asked for JSON")
    problem = schema_problem(reply.output, form["schema"])
    if problem is not None:
        raise ValueError(f"the reply's output is outside the request's schema, which the "
                         f"API's constrained decoding never sends: {problem}")
    return dataclasses.replace(reply, text=json.dumps(reply.output), output=None)
