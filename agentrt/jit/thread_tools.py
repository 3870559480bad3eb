"""ThreadTools: the tools one run of a thread can see and call (the JIT ``RunTools``).

The active set belongs to the thread and needs no storage of its own: it is
replayed from the stored history when a run opens (:meth:`ThreadTools.restore`)
by the same rules that activated it live, so a thread resumed in another process
gets the same tools list, byte for byte.

Ordering. Tools activated while one assistant message is answered are appended
to the tools list together when the next request is built, dependencies first
and then by name, whatever order their activations finished in (they may run
concurrently). Earlier tools never move: the list is append-only, and the
request prefix changes only when a tool was activated.

With deferred loading the list is the core tools, then the agent's fixed part
(the search tool, every allowed function deferred), and nothing is appended on
activation: ``initialize_tools`` references the functions instead
(:meth:`ThreadTools.references`). Only a function the agent could not defer
(a tool the manifest does not describe) is still appended.

Everything agent-wide comes in the constructor (:class:`~agentrt.jit.agent_tools.AgentTools`);
what a run did is reported back by return value: an :class:`ActivationReport` per
activation and :meth:`ThreadTools.statistics` for the run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError

from .._errors import MissingParameterError, ToolDefinitionError
from ..log import get_logger
from ..thread._messages import Message
from ..tools._registry import BoundFunction
from ..tools._tool import record_injected
from .catalog import did_you_mean
from .guides import get_guides, guide_key, render_guide, set_guides
from .initialize_tools import INITIALIZE_TOOLS, ActivationReport, ToolLoader, Trigger
from .search_tools import ToolFinder, first_search

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .._context import RunContext
    from ..telemetry import Telemetry
    from ..tools import FunctionSpec, Tool
    from .agent_tools import AgentTools
    from .detector import Provided

__all__ = ["JITStatistics", "ThreadTools"]

log = get_logger("agentrt.jit")


@dataclass(frozen=True, slots=True)
class JITStatistics:
    """What one run's tools did: ``activated`` live activations, ``restored`` replayed
    from history, ``failed`` activations, ``imported`` tool modules imported."""

    activated: int = 0
    restored: int = 0
    failed: int = 0
    imported: int = 0


@dataclass(slots=True)
class _Active:
    cls: type[Tool]
    specs: dict[str, FunctionSpec]  # the functions this agent may call, in class order
    instance: Tool | None = None


@dataclass(slots=True)
class _Flight:
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None


class ThreadTools:
    """Per run: active tools, their instances, and activation (single-flight per tool).

    Built with the agent's core tools (and ``initialize_tools``) active; a run's
    earlier activations are replayed by :meth:`restore`."""

    def __init__(self, agent: AgentTools, run: RunContext, provided: Provided, *,
                 telemetry: Telemetry | None = None,
                 source: Callable[[], AgentTools] | None = None) -> None:
        """``source``: the agent's tools as they are now, when they may change during
        the run (an MCP server's live tool list: see :meth:`_adopt`)."""
        self._agent = agent
        self._source = source
        self._core_tools = 0  # self._order[:_core_tools] are the core tools
        self._telemetry = telemetry
        self._run = run
        self._provided = provided
        self._active: dict[str, _Active] = {}
        self._owner: dict[str, str] = {}  # function -> active tool
        self._pending: list[str] = []
        self._order: list[str] = []
        self._definitions: list[dict[str, Any]] = []
        self._core_end = 0  # _definitions[:_core_end] are the core tools'
        self._flights: dict[str, _Flight] = {}
        # Failures that cannot change within a run (import, definition, a missing
        # argument): answered again without retrying, and logged once.
        self._failed: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._revealed: set[str] = set()  # functions a tool_reference of the thread named
        self._start()

    # -- the RunTools contract -------------------------------------------------

    def definitions(self) -> list[dict[str, Any]]:
        self._follow()
        self._commit()
        if not self._agent.deferring:
            return list(self._definitions)
        search = self._agent.search_tool
        return [*self._definitions[:self._core_end], *([dict(search)] if search else ()),
                *self._agent.deferred.definitions, *self._definitions[self._core_end:]]

    def references(self, tools: Iterable[str]) -> list[str]:
        """The deferred functions of these active tools, in order: what a
        ``tool_reference`` must name for the model to see them (none in append mode)."""
        deferred = self._agent.deferred.functions
        return [fn for tool in tools if tool in self._active
                for fn in self._active[tool].specs if fn in deferred]

    async def resolve(self, function_name: str) -> BoundFunction | str:
        self._follow()
        tool = self._owner.get(function_name)
        if tool is not None:
            return self._bind(tool, function_name)
        catalog, policy = self._agent.catalog, self._agent.policy
        tool = catalog.tool_for(function_name)
        if tool is None:
            callable_names = [*self._owner, *catalog.function_names()]
            return (f"Unknown function {function_name!r}"
                    f"{did_you_mean(function_name, callable_names)}. Call one of the "
                    f"functions in your tools list, or {INITIALIZE_TOOLS} to load a tool.")
        if tool in self._active:
            if not policy.allows(tool, function_name):
                return self._method_refusal(tool, function_name)
            return f"Tool {tool!r} no longer defines function {function_name!r}."
        refusal = policy.refusal(tool)
        if refusal is not None:
            return f"Function {function_name!r} cannot be called: {refusal}."
        if not policy.allows(tool, function_name):
            return self._method_refusal(tool, function_name)
        report = await self.activate_many([tool], trigger="auto")
        if tool in report.failed:
            return f"Function {function_name!r} cannot be called: {report.failed[tool]}."
        return await self.resolve(function_name)

    # -- activation --------------------------------------------------------------

    async def activate(self, name: str) -> ActivationReport:
        """Activate one tool with its dependencies (see :meth:`activate_many`)."""
        return await self.activate_many([name])

    async def activate_many(self, names: Iterable[str], *,
                            trigger: Trigger = "api") -> ActivationReport:
        """Activate ``names`` with their dependencies, dependencies first.

        Unknown and refused names are reported, not raised: this is what the model
        asked for. Activating an active tool is a no-op (it is never rebuilt).
        """
        self._follow()
        catalog, policy = self._agent.catalog, self._agent.policy
        requested = tuple(dict.fromkeys(names))
        failed: dict[str, str] = {}
        allowed: list[str] = []
        for name in requested:
            if name not in catalog:
                failed[name] = f"there is no tool {name!r}{did_you_mean(name, catalog.names())}"
            else:
                refusal = policy.refusal(name)
                if refusal is None:
                    allowed.append(name)
                else:
                    failed[name] = refusal
        plan = catalog.graph.plan(allowed, policy.may_activate)
        degraded: dict[str, list[str]] = {}
        for tool, deps in plan.blocked.items():
            for dep in deps:
                self._log("warning", "jit.dependency_blocked", tool=tool, dependency=dep)
                degraded.setdefault(tool, []).append(
                    f"its dependency {dep!r} is not enabled for this agent")
        activated, already, ready = [], [], []
        for name in plan.order:
            if name in self._active:
                if name in plan.requested:
                    already.append(name)
                    ready.append(name)
                continue
            for dep in catalog.graph.requires(name):
                if dep in failed:
                    degraded.setdefault(name, []).append(f"its dependency {dep!r} failed to load")
            error = await self._activate_one(name, trigger)
            if error is None:
                activated.append(name)
                ready.append(name)
            else:
                failed[name] = error
        return ActivationReport(requested, tuple(activated), tuple(already), tuple(ready),
                                {k: tuple(v) for k, v in degraded.items() if k not in failed},
                                failed)

    async def _activate_one(self, name: str, trigger: Trigger) -> str | None:
        """Single-flight: concurrent activations of one tool share the first one's work."""
        flight = self._flights.get(name)
        if flight is not None:
            await flight.done.wait()
            return flight.error
        if name in self._active:
            return None
        if name in self._failed:
            return self._failed[name]
        flight = self._flights[name] = _Flight()
        try:
            # Shielded: a caller cancelled mid-import must not leave the others waiting on
            # work nobody finishes. The import is bounded; the wait is short.
            with anyio.CancelScope(shield=True):
                flight.error = await (self._load(name, trigger) if self._telemetry is None
                                      or trigger == "restore" else
                                      self._traced_load(self._telemetry, name, trigger))
        finally:
            del self._flights[name]
            flight.done.set()
        return flight.error

    async def _traced_load(self, telemetry: Telemetry, name: str,
                           trigger: Trigger) -> str | None:
        """A live activation in its ``activate_tool`` span (replays at restore make none)."""
        with telemetry.activation(name, self._agent.catalog.graph.requires(name),
                                  trigger) as span:
            error = await self._load(name, trigger)
            telemetry.activation_failed(span, error)
        return error

    async def _load(self, name: str, trigger: Trigger) -> str | None:
        started = time.perf_counter()
        try:
            cls, imported = await self._agent.classes.load(name)
        except ToolDefinitionError as exc:
            return self._fail(name, trigger, str(exc), final=True)
        self._counts["imported"] += imported
        allowed = self._agent.policy.methods(name)
        specs = {fn: s for fn, s in cls.functions().items() if allowed is None or fn in allowed}
        for fn in specs:
            other = self._owner.get(fn)
            if other is not None:
                return self._fail(name, trigger, f"function {fn!r} is defined by both tool "
                                  f"{other!r} and tool {name!r}", final=True)
        active = _Active(cls, specs)
        try:  # the same answer at restore as live, without building the instance yet
            self._agent.detector.arguments(cls, name, self._provided)
        except MissingParameterError as exc:
            return self._fail(name, trigger, str(exc), final=True)
        if trigger != "restore":  # construct now, so a failure is reported to the model now
            error = self._construct(name, active)
            if error is not None:
                return self._fail(name, trigger, error, final=False)
        self._add(name, active)
        self._counts["restored" if trigger == "restore" else "activated"] += 1
        self._log("debug" if trigger == "restore" else "info", "jit.activate", tool=name,
                  trigger=trigger, constructed=active.instance is not None,
                  duration_ms=round((time.perf_counter() - started) * 1000, 3))
        return None

    def _fail(self, name: str, trigger: Trigger, error: str, *, final: bool) -> str:
        if final:
            self._failed[name] = error
        self._log("debug" if trigger == "restore" else "error", "jit.activation_failed",
                  tool=name, trigger=trigger, error=error)
        self._counts["failed"] += 1
        return error

    def _construct(self, name: str, active: _Active) -> str | None:
        try:
            kwargs = self._agent.detector.arguments(active.cls, name, self._provided)
        except MissingParameterError as exc:
            return str(exc)
        try:
            active.instance = active.cls(**kwargs)
            # a read-only result of a tool built for alice is alice's: part of its keys
            record_injected(active.instance, kwargs)
        except Exception as exc:
            log.warning("jit.construct_failed", tool=name, error=repr(exc), exc_info=True)
            return f"constructing tool {name!r} failed: {type(exc).__name__}: {exc}"
        return None

    def _add(self, name: str, active: _Active) -> None:
        self._active[name] = active
        for fn in active.specs:
            self._owner[fn] = name
        self._pending.append(name)

    def _instance(self, tool: str) -> Tool | str:
        """The tool's instance, built on first use if it was restored or is a core class."""
        active = self._active[tool]
        if active.instance is None:
            error = self._construct(tool, active)
            if error is not None:
                return error
        assert active.instance is not None
        return active.instance

    def _bind(self, tool: str, function_name: str) -> BoundFunction | str:
        instance = self._instance(tool)
        if isinstance(instance, str):
            return f"Function {function_name!r} cannot be called: {instance}."
        return BoundFunction(instance, self._active[tool].specs[function_name])

    def _method_refusal(self, tool: str, function_name: str) -> str:
        enabled = sorted(self._agent.policy.methods(tool) or ())
        return (f"Function {function_name!r} of tool {tool!r} is not enabled for this agent "
                f"(enabled: {', '.join(enabled) or 'none'}).")

    def _commit(self, *, keep_order: bool = False) -> None:
        """Append what was activated since the last request: dependencies first, then by
        name (core tools, ``keep_order``, in their declared order)."""
        graph = self._agent.catalog.graph
        names = self._pending if keep_order else sorted(
            self._pending, key=lambda n: (graph.layer(n), n))
        deferred = self._agent.deferred.functions
        for name in names:
            self._order.append(name)
            specs = [s for s in self._active[name].specs.values() if s.name not in deferred]
            if specs and self._agent.deferring and not keep_order:
                self._log("info", "jit.appended", tool=name,
                          functions=[s.name for s in specs],
                          reason="the manifest does not describe them, so they could not be "
                                 "deferred; the request prefix changes")
            self._definitions += [self._agent.definition(spec) for spec in specs]
        self._pending.clear()

    # -- start of a run -----------------------------------------------------------

    def _start(self) -> None:
        """Core tools (instances shared, classes built on first call), then the loader
        and the search tool."""
        policy = self._agent.policy
        items: list[Tool | type[Tool]] = [*self._agent.core]
        if self._agent.with_loader:
            items.append(ToolLoader(self))
        if self._agent.finder is not None:
            items.append(ToolFinder(self._agent.finder))
        for item in items:
            cls = item if isinstance(item, type) else type(item)
            allowed = policy.methods(cls.name)
            specs = {fn: s for fn, s in cls.functions().items() if allowed is None or fn in allowed}
            self._add(cls.name, _Active(cls, specs, None if isinstance(item, type) else item))
        self._commit(keep_order=True)
        self._core_end = len(self._definitions)
        self._core_tools = len(self._order)

    # -- the agent's tools changed (an MCP server's live list) ---------------------

    def _follow(self) -> None:
        if self._source is not None:
            agent = self._source()
            if agent is not self._agent:
                self._adopt(agent)

    def _adopt(self, agent: AgentTools) -> None:
        """The agent's tools were rebuilt during this run (an MCP server reported a tool
        list other than the one its class was built from). From the next request on, an
        active tool whose class changed has the new class's functions (new ones callable,
        removed ones gone, schemas and options as the server says), in its place in the
        list: the request prefix changes from that tool's first definition on (with
        deferred loading, from the first deferred definition of a changed tool), and
        what comes before it stays byte for byte."""
        old, self._agent = self._agent, agent
        changed = []
        for name, active in list(self._active.items()):
            entry = agent.catalog.entry(name) if name in agent.catalog else None
            cls = entry.cls if entry is not None else None
            instance = active.instance
            if name == ToolFinder.name and agent.finder is not old.finder:
                instance = ToolFinder(agent.finder) if agent.finder is not None else None
            elif cls is None or cls is active.cls:
                continue
            else:
                instance = None  # built again, with the new class, on its next call
            cls = cls or active.cls
            allowed = agent.policy.methods(name)
            specs = {fn: s for fn, s in cls.functions().items()
                     if allowed is None or fn in allowed}
            for fn in active.specs:
                if self._owner.get(fn) == name:
                    del self._owner[fn]
            for fn in specs:
                self._owner.setdefault(fn, name)
            self._active[name] = _Active(cls, specs, instance)
            changed.append(name)
        deferred = agent.deferred.functions
        self._definitions = []
        for number, name in enumerate(self._order):
            if number == self._core_tools:
                self._core_end = len(self._definitions)
            self._definitions += [agent.definition(spec) for spec in
                                  self._active[name].specs.values() if spec.name not in deferred]
        if len(self._order) <= self._core_tools:
            self._core_end = len(self._definitions)
        if changed:
            self._log("info", "jit.tools_changed", tools=changed,
                      reason="an MCP server's live tool list differs from the one its "
                             "tools were built from")

    async def restore(self, history: Sequence[Message]) -> None:
        """Replay the thread's activations: each assistant message's tool_use blocks
        activate what they activated live, then its batch is committed. Notes what the
        thread's ``tool_reference`` blocks revealed (for :meth:`opening`)."""
        core = len(self._order)
        for message in history:
            if message.role != "assistant":
                self._note_references(message.blocks())
                continue
            for block in message.blocks():
                if block.get("type") == "tool_use":
                    await self._replay(str(block.get("name", "")), block.get("input"))
            self._commit()
        if len(self._order) > core:
            self._log("debug", "jit.restored", tools=self._order[core:])

    async def _replay(self, function_name: str, raw_input: Any) -> None:
        if function_name == INITIALIZE_TOOLS and self._owner.get(function_name) == ToolLoader.name:
            spec = self._active[ToolLoader.name].specs[INITIALIZE_TOOLS]
            try:
                names = spec.validate(raw_input if isinstance(raw_input, dict) else {})
            except ValidationError:
                return
            await self.activate_many(getattr(names, "tool_names", []), trigger="restore")
        elif function_name not in self._owner:
            tool = self._agent.catalog.tool_for(function_name)
            if (tool is not None and tool not in self._active
                    and self._agent.policy.allows(tool, function_name)):
                await self.activate_many([tool], trigger="restore")

    def _note_references(self, blocks: Iterable[dict[str, Any]]) -> None:
        for block in blocks:
            content = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(content, list):
                self._revealed.update(str(item.get("tool_name")) for item in content
                                      if isinstance(item, dict)
                                      and item.get("type") == "tool_reference")

    async def opening(self, user_input: str | list[dict[str, Any]]) -> list[Message]:
        """With ``search_first``: a ``search_tools`` call for the user's new message and
        its answer, to store after it (see :func:`~agentrt.jit.search_tools.first_search`);
        nothing when the search finds no function the thread has not revealed yet."""
        finder = self._agent.finder
        if not self._agent.search_first or finder is None:
            return []
        blocks = [{"type": "text", "text": user_input}] if isinstance(user_input, str) \
            else user_input
        text = "\n".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        found = await first_search(finder, text, self._revealed)
        if found is None:
            return []
        use, result = found
        self._note_references([result])
        self._log("info", "jit.search_first", query=use["input"]["query"],
                  revealed=[r["tool_name"] for r in result["content"][1:]])
        return [Message(role="assistant", content=[use], metadata={"synthetic": "search_first"}),
                Message(role="user", content=[result])]

    # -- guides ------------------------------------------------------------------

    async def guides(self, names: Iterable[str]) -> list[str]:
        """Each tool's guide through the guide cache (rendered once per content version),
        fetched and stored in one batch: one round trip when the cache is Redis."""
        keyed = []
        for name in names:
            active = self._active.get(name)
            if active is not None:
                keyed.append((name, guide_key(name, active.cls.version,
                                              self._agent.classes.fingerprint(active.cls),
                                              active.specs)))
        cached = await get_guides(self._agent.guide_cache, [key for _, key in keyed])
        rendered: dict[str, str] = {}
        out = []
        for name, key in keyed:
            text = cached.get(key)
            if text is None:
                instance = self._instance(name)
                if isinstance(instance, str):
                    out.append(f"## {name}\n(guide unavailable: {instance})\n")
                    continue
                text = rendered[key] = render_guide(instance, self._active[name].specs.values())
            out.append(text)
        await set_guides(self._agent.guide_cache, rendered)
        return out

    def active_tools(self) -> list[str]:
        """Active tool names in tools-list order (pending ones last)."""
        return [*self._order, *self._pending]

    def statistics(self) -> JITStatistics:
        """What this run's activations did so far."""
        return JITStatistics(**{k: self._counts[k] for k in
                                ("activated", "restored", "failed", "imported")})

    def _log(self, level: str, event: str, **fields: Any) -> None:
        getattr(log, level)(event, thread_id=self._run.thread_id, run_id=self._run.run_id,
                            **fields)
