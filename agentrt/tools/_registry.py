"""Function name -> (tool instance, spec): the O(1) lookup behind every tool_use block."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ToolDefinitionError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from .._context import RunContext
    from ..thread._messages import Message
    from ._schema import FunctionSpec
    from ._tool import Tool

__all__ = ["BoundFunction", "ToolRegistry"]


@dataclass(frozen=True, slots=True)
class BoundFunction:
    tool: Tool
    spec: FunctionSpec


class ToolRegistry:
    """A fixed set of active tools, in activation order; both a ToolProvider and RunTools.

    Definition order is append-only: the tools list is the start of the prompt,
    so reordering it would invalidate the provider's prompt cache.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._functions: dict[str, BoundFunction] = {}
        self._definitions: list[dict[str, Any]] = []
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        """Register a tool; a ``ToolDefinitionError`` if its name or one of its function
        names is taken."""
        if tool.name in self._tools:
            raise ToolDefinitionError(f"tool {tool.name!r} is registered twice")
        for name in type(tool).functions():
            existing = self._functions.get(name)
            if existing is not None:
                raise ToolDefinitionError(
                    f"function {name!r} is defined by both tool {existing.tool.name!r} "
                    f"and tool {tool.name!r}; rename one (function(name=...))"
                )
        self._tools[tool.name] = tool
        for name, spec in type(tool).functions().items():
            self._functions[name] = BoundFunction(tool, spec)
            self._definitions.append(spec.definition())

    def get(self, function_name: str) -> BoundFunction | None:
        return self._functions.get(function_name)

    async def resolve(self, function_name: str) -> BoundFunction | str:
        bound = self._functions.get(function_name)
        if bound is not None:
            return bound
        close = difflib.get_close_matches(function_name, list(self._functions), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (f"Unknown function {function_name!r}.{hint} "
                f"Available: {', '.join(self._functions) or 'none'}.")

    async def open_run(self, run: RunContext, history: Sequence[Message]) -> ToolRegistry:
        """A fixed set of tools is the same for every run."""
        return self

    def tool(self, tool_name: str) -> Tool | None:
        """The registered tool of that name, or None."""
        return self._tools.get(tool_name)

    def definitions(self) -> list[dict[str, Any]]:
        return list(self._definitions)

    def active_tools(self) -> list[str]:
        return list(self._tools)

    async def opening(self, user_input: str | list[dict[str, Any]]) -> list[Message]:
        """A fixed set of tools adds nothing to a user's message."""
        return []

    def function_names(self) -> list[str]:
        """Every function the model may call, in registration order."""
        return list(self._functions)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
