"""``@function``: marks a Tool method as callable by the model and records its contract.

The decorator only attaches a :class:`FunctionOptions`; the schema is built once per
class by :mod:`._schema` when the class is defined, so a malformed function fails
at import time (a developer error) rather than on the model's first call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeAlias, TypeVar, overload

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

__all__ = ["CacheScope", "FunctionOptions", "function"]

P = ParamSpec("P")
R = TypeVar("R")
CacheScope: TypeAlias = Literal["turn", "thread", "process", "shared"]

_OPTIONS_ATTR = "__agentrt_function__"


@dataclass(frozen=True, slots=True)
class FunctionOptions:
    """What a function declares about itself.

    ``read_only`` is the one switch that lets the pipeline dedupe, memoize, cache
    or coalesce a call; a function that says nothing is assumed to have side
    effects and runs every time it is called.
    """

    name: str | None = None
    description: str | None = None
    read_only: bool = False
    ttl: float | None = None
    scope: CacheScope = "shared"
    public: bool = False
    cache_tags: tuple[str, ...] = ()
    invalidates: tuple[str, ...] = ()
    timeout: float | None = None
    batch: str | None = None
    error_ttl: float | None = None
    # Human approval: a call of this function pauses the run until a person decides
    # (agentrt.Agent.resume). Set by @function, by an agent's ``function_options``,
    # the JIT TOML's ``[function_options]``, or by a tool source (MCP's
    # ``destructiveHint``); ``approval_reason`` is the why shown with the pending call.
    requires_approval: bool = False
    approval_reason: str | None = None


@overload
def function(
    fn: Callable[P, Awaitable[R]], /
) -> Callable[P, Awaitable[R]]: ...


@overload
def function(
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    ttl: float | None = None,
    scope: CacheScope = "shared",
    public: bool = False,
    cache_tags: Sequence[str] = (),
    invalidates: Sequence[str] = (),
    timeout: float | None = None,
    batch: str | None = None,
    error_ttl: float | None = None,
    requires_approval: bool = False,
    approval_reason: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...


def function(
    fn: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    ttl: float | None = None,
    scope: CacheScope = "shared",
    public: bool = False,
    cache_tags: Sequence[str] = (),
    invalidates: Sequence[str] = (),
    timeout: float | None = None,
    batch: str | None = None,
    error_ttl: float | None = None,
    requires_approval: bool = False,
    approval_reason: str | None = None,
) -> Any:
    """Mark an ``async def`` method of a :class:`Tool` as a function the model may call.

    ``read_only=True`` declares the call free of side effects (safe to dedupe and
    cache, optionally for ``ttl`` seconds within ``scope``; ``public=True`` lets
    tenants share results). A side-effecting function may list ``invalidates``:
    cache tags whose cached results become stale once it has run, whether it
    succeeded, failed or was cancelled (a write that failed part-way, or timed out,
    may still have happened).

    ``scope`` bounds where a result is reused: ``turn`` (one assistant message),
    ``thread`` (the conversation), ``process`` (every thread here), ``shared``
    (every process on the shared cache). ``batch`` names an ``async`` method taking
    a list of inputs, used to answer many calls with one upstream request.
    ``error_ttl`` opts in to caching a deterministic error (a ``ToolError``).

    ``requires_approval=True``: a person approves each call before it runs (the run
    stops with ``stop_reason="approval_required"``; ``Agent.resume`` decides). Such a
    call is never cached, merged or deduplicated, even when ``read_only``.
    ``approval_reason`` says why, to the person deciding.
    """
    if read_only and invalidates:
        raise TypeError("a read_only function cannot invalidate cache tags")
    if not read_only and (ttl is not None or cache_tags or public or batch or error_ttl):
        raise TypeError("ttl, cache_tags, public, batch and error_ttl only apply to "
                        "read_only functions")
    for label, value in (("ttl", ttl), ("timeout", timeout), ("error_ttl", error_ttl)):
        if value is not None and value <= 0:
            raise TypeError(f"{label} must be positive, got {value!r}")
    options = FunctionOptions(
        name=name,
        description=description,
        read_only=read_only,
        ttl=ttl,
        scope=scope,
        public=public,
        cache_tags=tuple(cache_tags),
        invalidates=tuple(invalidates),
        timeout=timeout,
        batch=batch,
        error_ttl=error_ttl,
        requires_approval=requires_approval,
        approval_reason=approval_reason,
    )

    def mark(f: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        setattr(f, _OPTIONS_ATTR, options)
        return f

    return mark(fn) if fn is not None else mark


def options_of(obj: object) -> FunctionOptions | None:
    found = getattr(obj, _OPTIONS_ATTR, None)
    return found if isinstance(found, FunctionOptions) else None
