"""The Tool base class: a group of related functions sharing state (a client, a session)."""

from __future__ import annotations

import inspect
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import ToolDefinitionError
from ._function import options_of
from ._schema import FunctionSpec, build_spec

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Tool", "default_tool_name", "injected_values", "record_injected"]

_INJECTED = "_agentrt_injected"
_SCALARS = (str, int, float, bool)


def default_tool_name(cls_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()


class Tool:
    """Subclass and mark ``async def`` methods with :func:`agentrt.function`.

    Class attributes: ``name`` (defaults to the class name in snake_case),
    ``version`` (part of every call key, so bumping it retires cached results),
    ``requires`` (names of tools this one needs, activated first).
    """

    name: ClassVar[str] = "tool"
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ()
    _functions: ClassVar[Mapping[str, FunctionSpec]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = default_tool_name(cls.__name__)
        specs: dict[str, FunctionSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                options = options_of(value)
                if options is None:
                    continue
                spec = build_spec(cls.name, value, options)
                clash = next((s for s in specs.values()
                              if s.name == spec.name and s.method_name != attr), None)
                if clash is not None:
                    raise ToolDefinitionError(
                        f"{cls.name}: methods {clash.method_name!r} and {attr!r} "
                        f"both define function {spec.name!r}"
                    )
                specs[attr] = spec
        for spec in specs.values():
            batch = spec.options.batch
            if batch is not None and not inspect.iscoroutinefunction(getattr(cls, batch, None)):
                raise ToolDefinitionError(
                    f"{cls.name}.{spec.method_name}: batch form {batch!r} must be an "
                    f"async method of {cls.__name__}"
                )
        cls._functions = MappingProxyType({s.name: s for s in specs.values()})

    @classmethod
    def functions(cls) -> Mapping[str, FunctionSpec]:
        """Function name -> spec, built once when the class was defined."""
        return cls._functions

    def guide(self) -> str | None:
        """Longer usage notes shown to the model when the tool is activated (JIT)."""
        return None


def record_injected(tool: Tool, arguments: Mapping[str, Any]) -> None:
    """Remember the plain values (strings, numbers) a tool was constructed with: a
    read-only result of a tool built with ``account_id="alice"`` is alice's, so they
    are part of its calls' keys unless the function is public."""
    plain = {k: v for k, v in arguments.items() if isinstance(v, _SCALARS)}
    if plain:
        setattr(tool, _INJECTED, plain)


def injected_values(tool: Tool) -> Mapping[str, Any]:
    found: Mapping[str, Any] = getattr(tool, _INJECTED, None) or {}
    return found
