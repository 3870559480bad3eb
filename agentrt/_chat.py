"""``agentrt chat TARGET``: a REPL on one thread.

Each line is a turn of the same thread; lines starting with ``/`` are commands
(``/help`` lists them). Ctrl-C during a turn cancels that turn only: the runtime
has already stored every message the turn produced (a cancelled tool call gets an
"outcome unknown" result), so the thread stays consistent and the next line goes
on from it. Ctrl-C at the prompt, ``/exit`` or end of input leaves.

Input is read from the file descriptor itself, waiting on the event loop, so a
pending read never blocks the signal watcher or a running turn (a worker thread
blocked in ``readline`` could not be cancelled). On a terminal, lines are typed with
readline's editing and history (:mod:`._lines`).
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

import anyio

from ._errors import AgentRtError, ThreadNotFoundError
from ._events import RunFinished
from ._inspect import render_messages
from ._lines import LineReader, TerminalReader, terminal_reader
from ._render import RunView, animated, hits_text, is_tty, plural, summary
from .llm._usage import Usage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio import CancelScope
    from anyio.abc import TaskStatus

    from ._approvals import PendingCall
    from .agent import Agent
    from .pipeline import RunStats

__all__ = ["Chat", "LineReader", "describe_tools"]

_HELP = """\
commands:
  /tools     the tools the model sees on this thread now (JIT: core + activated)
  /stats     this session's tool calls, what answered them, tokens; the process cache
  /history   the thread's messages so far
  /thread    this thread's id (resume it with --thread ID)
  /help      this list
  /exit      leave (so do Ctrl-D, and Ctrl-C at the prompt)
Ctrl-C during a turn cancels that turn; the thread keeps everything said so far."""


async def describe_tools(agent: Agent, thread_id: str) -> list[str]:
    """Lines for ``/tools``: the active tools and the functions the model can call now.

    A JIT agent in deferred mode sends every allowed function marked
    ``defer_loading``; the model sees one only once its tool is active (the thread's
    ``initialize_tools`` answered with a reference to it), so those are listed apart.
    """
    tools = await agent.tools_for(thread_id)
    definitions = tools.definitions()
    active = tools.active_tools()
    references = getattr(tools, "references", None)  # JIT only: deferred functions loaded
    loaded = set(references(active)) if callable(references) else set()
    callable_now = [d for d in definitions
                    if not d.get("defer_loading") or d.get("name") in loaded]
    waiting = [str(d.get("name")) for d in definitions
               if d.get("defer_loading") and d.get("name") not in loaded]
    lines = [f"active tools ({len(active)}): {', '.join(active) or 'none'}\n",
             f"functions the model can call now ({len(callable_now)}):\n"]
    for item in callable_now:
        first = str(item.get("description", "")).strip().splitlines()
        lines.append(f"  {item.get('name', '?')!s:<22} {first[0] if first else ''}\n")
    if waiting:
        lines.append(f"deferred until their tool is activated ({len(waiting)}): "
                     f"{', '.join(waiting)}\n")
    return lines


@dataclass(slots=True)
class _Totals:
    turns: int = 0
    cancelled: int = 0
    tool_calls: int = 0
    executed: int = 0
    errors: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    usage: Usage = field(default_factory=Usage)

    def add(self, stats: RunStats, usage: Usage) -> None:
        self.turns += 1
        self.tool_calls += stats.tool_calls
        self.executed += stats.executed
        self.errors += stats.errors
        self.hits.update(stats.hits)
        self.usage += usage


class Chat:
    def __init__(self, agent: Agent, thread_id: str, *, stdin: TextIO, out: TextIO,
                 err: TextIO) -> None:
        self.agent = agent
        self.thread_id = thread_id
        self.terminal = terminal_reader(stdin, out, "you> ")
        self.lines: LineReader | TerminalReader = self.terminal or LineReader(stdin)
        self.interactive = is_tty(stdin)
        self.out = out
        self.err = err
        self.totals = _Totals()
        self._turn: CancelScope | None = None
        self._session: CancelScope | None = None
        self.interrupted = False

    async def run(self) -> int:
        """0 after /exit or end of input, 130 after Ctrl-C at the prompt."""
        async with anyio.create_task_group() as tg:
            self._session = tg.cancel_scope
            if threading.current_thread() is threading.main_thread():
                await tg.start(self._watch_interrupts)
            try:
                await self._loop()
            finally:
                if self.terminal is not None:
                    self.terminal.close()
            tg.cancel_scope.cancel()
        return 130 if self.interrupted else 0

    async def _watch_interrupts(self, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self._turn is not None:
                    self._turn.cancel()
                else:
                    self.interrupted = True
                    self.out.write("\n")
                    assert self._session is not None
                    self._session.cancel()

    async def _loop(self) -> None:
        while True:
            if self.interactive and self.terminal is None:
                self.out.write("you> ")
                self.out.flush()
            line = await self.lines.readline()
            if line is None:
                if self.interactive:
                    self.out.write("\n")
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not await self._command(line):
                    return
                continue
            await self._turn_on(line)

    async def _turn_on(self, text: str) -> None:
        view = RunView(self.out)
        decisions: tuple[list[str], dict[str, str]] | None = None
        with anyio.CancelScope() as scope:
            self._turn = scope
            try:
                while True:  # a turn that waits for approval asks, then resumes
                    events = (self.agent.stream(text, thread_id=self.thread_id)
                              if decisions is None else self.agent.resume_stream(
                                  self.thread_id, approve=decisions[0], deny=decisions[1]))
                    result = None
                    async with animated(view):
                        async for event in events:
                            view.show(event)
                            if isinstance(event, RunFinished):
                                result = event.result
                                self.totals.add(result.stats, result.usage)
                                view.line(summary(result, thread=False))
                    if result is None or not result.pending:
                        break
                    decisions = await self._ask(result.pending)
                    if decisions is None:
                        break
            except AgentRtError as exc:  # this turn failed; the thread and the REPL go on
                view.end_line()
                self.err.write(f"agentrt: {' '.join(str(exc).split())}\n")
                self.err.flush()
            finally:
                self._turn = None
        if scope.cancelled_caught:
            self.totals.cancelled += 1
            view.line("(turn cancelled; the thread keeps everything said so far)")

    async def _ask(self, pending: Sequence[PendingCall]
                   ) -> tuple[list[str], dict[str, str]] | None:
        """y/n for each call waiting for approval (its input shown); None at end of input
        (the calls stay pending: the next message denies them, /exit keeps them)."""
        approve: list[str] = []
        deny: dict[str, str] = {}
        for call in pending:
            shown = json.dumps(call.input, ensure_ascii=False)
            self.out.write(f"approve {call.name} {shown}? ({call.reason}) [y/N] ")
            self.out.flush()
            answer = await self.lines.readline()
            if answer is None:
                self.out.write("\n(left pending)\n")
                return None
            if answer.strip().lower() in ("y", "yes"):
                approve.append(call.id)
            else:
                deny[call.id] = "the user said no (agentrt chat)"
        return approve, deny

    async def _command(self, line: str) -> bool:
        """False to leave the REPL."""
        name = line.split()[0].lower()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.out.write(_HELP + "\n")
        elif name == "/thread":
            self.out.write(f"{self.thread_id}\n")
        elif name == "/tools":
            self.out.write("".join(await describe_tools(self.agent, self.thread_id)))
        elif name == "/stats":
            self._stats()
        elif name == "/history":
            try:
                messages = await self.agent.runtime.store.messages(self.thread_id)
            except ThreadNotFoundError:
                messages = []
            self.out.write("".join(render_messages(messages)) or "(no messages yet)\n")
        else:
            self.out.write(f"unknown command {name}; /help lists the commands\n")
        self.out.flush()
        return True

    def _stats(self) -> None:
        t, u = self.totals, self.totals.usage
        cache = self.agent.runtime.pipeline.local_cache.statistics()
        flights = self.agent.runtime.pipeline.flights.statistics()
        self.out.write(
            f"thread {self.thread_id}: {plural(t.turns, 'turn')} ({t.cancelled} cancelled)\n"
            f"tool calls {t.tool_calls}: executed {t.executed}, errors {t.errors}, answered "
            f"without running the tool {sum(t.hits.values())} ({hits_text(t.hits)})\n"
            f"tokens: in {u.input_tokens}, out {u.output_tokens}, cache read "
            f"{u.cache_read_input_tokens}, cache write {u.cache_creation_input_tokens}\n"
            f"process cache: {cache.entries} entries, {cache.hits} hits, {cache.misses} misses; "
            f"single-flight: {flights.led} led, {flights.joined} joined\n")

