"""From a method's signature and docstring to a validated input model and a JSON schema.

Built once per Tool class. The schema is rendered deterministically (no titles,
fields in signature order) because it is part of the prompt prefix: any byte
that changes between requests throws away the provider's prompt cache.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from .._context import RunContext
from .._errors import ToolDefinitionError

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._function import FunctionOptions

__all__ = ["FunctionSpec", "build_spec"]

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """Everything the runtime knows about one model-callable function."""

    name: str
    tool_name: str
    method_name: str
    description: str
    options: FunctionOptions
    input_model: type[BaseModel]
    input_schema: dict[str, Any]
    context_param: str | None

    @property
    def read_only(self) -> bool:
        return self.options.read_only

    def definition(self) -> dict[str, Any]:
        """The ``tools[i]`` entry of a request."""
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}

    def validate(self, raw: Mapping[str, Any]) -> BaseModel:
        """Raises ``pydantic.ValidationError``; the caller turns it into an error result."""
        return self.input_model.model_validate(raw)


def _split_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Summary text and per-argument descriptions from a Google-style docstring."""
    if not doc:
        return "", {}
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        heading = _SECTION.match(line)
        if heading:
            section, current = heading.group(1), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            match = _ARG_LINE.match(line)
            if match and not line.startswith((" " * 8, "\t\t")):
                current = match.group(1).lstrip("*")
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(summary).strip(), args


def _strip_titles(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    for sub in schema.get("$defs", {}).values():
        if isinstance(sub, dict):
            _strip_titles(sub)
    return schema


def build_spec(
    tool_name: str, method: Callable[..., Any], options: FunctionOptions
) -> FunctionSpec:
    qualname = f"{tool_name}.{method.__name__}"
    if not inspect.iscoroutinefunction(method):
        raise ToolDefinitionError(f"{qualname} must be an `async def` method to be a tool function")
    try:
        hints = typing.get_type_hints(method, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"{qualname}: cannot resolve type hints ({exc})") from exc
    summary, arg_docs = _split_docstring(method.__doc__)
    description = options.description or summary
    if not description:
        raise ToolDefinitionError(
            f"{qualname} has no description: add a docstring (the model reads it)"
        )

    fields: dict[str, Any] = {}
    context_param: str | None = None
    params = list(inspect.signature(method).parameters.values())[1:]  # drop self
    for param in params:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"{qualname}: *args/**kwargs cannot be described to the model")
        if param.name not in hints:
            raise ToolDefinitionError(f"{qualname}: parameter {param.name!r} needs a type hint")
        hint = hints[param.name]
        if hint is RunContext:
            context_param = param.name
            continue
        default = ... if param.default is param.empty else param.default
        doc = arg_docs.get(param.name)
        fields[param.name] = (hint, Field(default, description=doc) if doc else Field(default))

    name = options.name or method.__name__
    if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        raise ToolDefinitionError(
            f"{qualname}: function name {name!r} must match [a-zA-Z0-9_-]{{1,64}}")
    try:
        model = create_model(
            f"{name}_input", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = _strip_titles(model.model_json_schema())
    except Exception as exc:
        raise ToolDefinitionError(f"{qualname}: cannot build an input schema ({exc})") from exc
    schema.setdefault("properties", {})
    return FunctionSpec(
        name=name,
        tool_name=tool_name,
        method_name=method.__name__,
        description=description,
        options=options,
        input_model=model,
        input_schema=schema,
        context_param=context_param,
    )
