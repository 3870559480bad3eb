"""Fills a tool's constructor from what the run has: by parameter name, then by type.

What is on offer (:class:`Provided`): the run (``thread_id``, ``run_id``,
``agent_name``, the ``RunContext`` itself), the identity (``account`` also as
``account_id``, ``project`` as ``project_id``...), the runtime's objects
(``settings``, ``store``, ``runtime``, ``thread``, a read-only
:class:`~agentrt.tools.ThreadView` of the run's thread, ``client`` = the
``anthropic.AsyncAnthropic`` when the model client has one, and with
``AGENTRT_REDIS_URL`` set ``redis``, the ``redis.asyncio`` client, and
``redis_gate``) and everything the application passed in ``Agent(deps={...})``,
which wins on a name clash. The loop itself (the ``ThreadManager``) is not on
offer: a tool reads its thread through the view. A parameter with a default may
go unfilled; a required one nothing provides fails the activation with
:class:`MissingParameterError`.

Builtin types (``str``, ``int``, ``dict``...) are matched by name only: two
strings are indistinguishable by type.
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from .._context import RunContext
from .._errors import MissingParameterError
from ..tools import ThreadView

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..runtime import Runtime

__all__ = ["Param", "ParameterDetector", "Provided", "RuntimeSources"]

_NAME_ONLY_MODULES = frozenset({"builtins", "typing", "collections.abc", "types"})


@dataclass(frozen=True, slots=True)
class Param:
    """A constructor parameter. ``annotation`` is a type, a string when the hint cannot be
    resolved at run time (an import under TYPE_CHECKING), or None without a hint."""

    name: str
    annotation: Any
    required: bool


class Provided:
    """Values on offer to constructors: ``by_name``, and ``by_type`` as (type, value)."""

    def __init__(self, by_name: Mapping[str, Any], by_type: Sequence[tuple[type, Any]]) -> None:
        self.by_name = dict(by_name)
        self.by_type = list(by_type)


class RuntimeSources:
    """What an agent's runs offer, assembled per run from its runtime."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime

    def provided(self, run: RunContext) -> Provided:
        """What a constructor of this run may be given: by name and by type."""
        names: dict[str, Any] = {"thread_id": run.thread_id, "run_id": run.run_id,
                                 "agent_name": run.agent, "identity": dict(run.identity)}
        typed: list[tuple[type, Any]] = [(RunContext, run)]
        for key, value in run.identity.items():
            names[key] = value
            if not key.endswith("_id"):
                names.setdefault(f"{key}_id", value)
        if self.runtime is not None:
            runtime = self.runtime
            objects: dict[str, Any] = {"runtime": runtime, "settings": runtime.settings,
                                       "store": runtime.store,
                                       "thread": ThreadView(run.thread_id, runtime.store)}
            sdk = getattr(runtime.model, "sdk", None)  # a model double may have none
            if sdk is not None:
                objects["client"] = sdk
                names["anthropic_client"] = sdk
            gate = getattr(runtime, "redis", None)  # set when AGENTRT_REDIS_URL is
            if gate is not None:
                objects["redis"] = getattr(gate, "client", gate)  # redis.asyncio client
                objects["redis_gate"] = gate  # the same, behind the circuit breaker
            names.update(objects, thread_store=runtime.store)
            typed += [(type(v), v) for v in objects.values()]
        names.update(run.deps)
        typed += [(type(v), v) for v in run.deps.values() if not _name_only(type(v))]
        return Provided(names, typed)


def _name_only(kind: type) -> bool:
    return kind.__module__ in _NAME_ONLY_MODULES


def _resolve(annotation: Any, namespace: Mapping[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, dict(namespace))  # the hint's own module namespace
    except Exception:
        return annotation  # e.g. imported under TYPE_CHECKING: matched by class name


def _parts(annotation: Any) -> list[Any]:
    """Union members without None; a string union is split on ``|``."""
    if isinstance(annotation, str):
        return [p.strip() for p in annotation.split("|") if p.strip() not in ("None", "")]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _matches(kind: type, annotation: Any) -> bool:
    for part in _parts(annotation):
        if isinstance(part, str):
            wanted = part.rsplit(".", 1)[-1]
            if any(k.__name__ == wanted for k in kind.__mro__):
                return True
        elif inspect.isclass(part) and not _name_only(part):
            try:
                if issubclass(kind, part):
                    return True
            except TypeError:  # a Protocol that is not runtime_checkable
                continue
    return False


class ParameterDetector:
    """Introspects each tool class once (cached, weakly) and builds its keyword arguments."""

    def __init__(self) -> None:
        self._params: weakref.WeakKeyDictionary[type, tuple[Param, ...]] = (
            weakref.WeakKeyDictionary())

    def parameters(self, cls: type) -> tuple[Param, ...]:
        """The constructor parameters of ``cls``, introspected once per class."""
        found = self._params.get(cls)
        if found is None:
            found = self._params[cls] = self._introspect(cls)
        return found

    @staticmethod
    def _introspect(cls: type) -> tuple[Param, ...]:
        init = cls.__init__  # type: ignore[misc]
        if init is object.__init__:
            return ()
        namespace = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
        params = []
        for param in list(inspect.signature(init).parameters.values())[1:]:  # drop self
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = None if param.annotation is param.empty else _resolve(
                param.annotation, namespace)
            params.append(Param(param.name, annotation,
                                required=param.default is param.empty))
        return tuple(params)

    def arguments(self, cls: type, tool: str, provided: Provided) -> dict[str, Any]:
        """Keyword arguments for ``cls(**kwargs)``; MissingParameterError otherwise."""
        kwargs: dict[str, Any] = {}
        for param in self.parameters(cls):
            if param.name in provided.by_name:
                kwargs[param.name] = provided.by_name[param.name]
                continue
            if param.annotation is not None:
                found: dict[int, Any] = {}
                for kind, value in provided.by_type:
                    if _matches(kind, param.annotation):
                        found.setdefault(id(value), value)
                if len(found) == 1:
                    kwargs[param.name] = next(iter(found.values()))
                    continue
                if len(found) > 1:
                    raise MissingParameterError(
                        tool, param.name, f"({_label(param.annotation)}) is ambiguous: "
                        f"{len(found)} provided values match its type; rename the parameter "
                        "after one of them (Agent(deps={name: value}))")
            if param.required:
                raise MissingParameterError(
                    tool, param.name, f"({_label(param.annotation)}) is provided by nothing: "
                    f"pass it as Agent(deps={{{param.name!r}: ...}}) or give it a default")
        return kwargs


def _label(annotation: Any) -> str:
    if annotation is None:
        return "no type hint"
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or repr(annotation)
