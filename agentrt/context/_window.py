"""A thread's context window during one run: what the next request shows of the thread.

The stored thread is never changed. What a request shows of it is a *view* computed from
the thread's messages and its context events (``agentrt.thread.ThreadEvent``, schema v2):

- ``context.cleared``: tool results cleared, oldest first. The client replaces each with
  a stub naming the call (``stub``), or sends it whole with the API's
  ``clear_tool_uses_20250919`` edit, whose ``keep`` is set so that the API clears exactly
  the same results (``api_edit``): the set only grows at an edit, so the request's bytes
  (and the cached prefix) stay the same between edits.
- ``context.summary``: the oldest messages, up to ``through``, replaced by a summary the
  model wrote in a separate request (its usage counted in the run's).
- a ``compaction`` block in an assistant message (``api_compact``): the API returned it,
  it is stored in the message as it came and sent back; what precedes it is not sent
  (the API would drop it anyway). ``context.compacted`` records it for audit.

Oversized blocks the view must keep (the newest message, a huge paste) are clipped to
their head and tail, deterministically, so a thread already past the window recovers.

A result the model no longer sees must not be served by the memo as if it had: every
tool call hidden by the view is given to ``forget`` (the processor's
``forget_results``), so asking again runs it through the pipeline.

The size of a request is measured as the API reported it for the previous request plus
an estimate of what was added; ``count_tokens`` is asked only close to the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..llm._model import ModelReply
from ..llm._usage import estimate_tokens
from ..log import get_logger
from ..thread._messages import Message, ThreadEvent
from ._policy import BETA_COMPACT, BETA_CONTEXT_EDITING, model_context
from ._summary import (
    blocks_of,
    clip,
    stub_text,
    summary_request,
    text_of,
    transcript,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .._errors import ModelError
    from ..llm._usage import Usage
    from ..thread._messages import ContentBlock
    from ..thread._store import ThreadStore
    from ._policy import ContextPolicy

__all__ = ["CLEARED", "COMPACTED", "SUMMARY", "ThreadWindow", "TokenCounter"]

CLEARED, SUMMARY, COMPACTED = "context.cleared", "context.summary", "context.compacted"
EVENT_VERSION = 1
_CLOSE = 0.9  # of the budget: from here a request is measured by count_tokens
_MAX_RETRIES = 2  # requests refused as too long, re-fitted and sent again, per turn
_log = get_logger("agentrt.context")


class TokenCounter(Protocol):
    async def count_tokens(self, request: dict[str, Any]) -> int: ...


@dataclass(slots=True)
class _View:
    """The messages a request shows (copies where changed) and what it hides."""

    messages: list[Message]
    keys: list[tuple[str, int]]  # per message: its id and how many of its blocks changed
    start: int  # index of the first history message shown
    hidden: set[str] = field(default_factory=set)  # tool_use ids the model cannot see
    in_view: list[str] = field(default_factory=list)  # tool_use ids shown, oldest first
    end: int = 0  # index of the history message after the last one shown
    size: int = 0  # estimated tokens of messages[:sized] (see ThreadWindow._size)
    sized: int = 0


class ThreadWindow:
    """One run's view of one thread (see the module's documentation)."""

    def __init__(self, *, policy: ContextPolicy, model: str, max_tokens: int,
                 store: ThreadStore, thread_id: str, events: Sequence[ThreadEvent],
                 summarizer: Any, counter: TokenCounter | None,
                 forget: Callable[[list[ContentBlock]], Awaitable[None]],
                 add_usage: Callable[[Usage], None], log: Any = None) -> None:
        self.policy = policy
        self.model = model
        self.budget = policy.budget_for(model, max_tokens)
        self.chain = policy.chain(model)
        self.store = store
        self.thread_id = thread_id
        self.summarizer = summarizer
        self.counter = counter
        self.forget = forget
        self.add_usage = add_usage
        self.log = log if log is not None else _log
        self.cleared: dict[str, str] = {}  # tool_use id -> strategy that cleared it
        self.summary: ThreadEvent | None = None
        for event in events:
            if event.kind == CLEARED:
                strategy = str(event.data.get("strategy", "stub"))
                for call_id in event.data.get("tool_use_ids") or ():
                    self.cleared[str(call_id)] = strategy
            elif event.kind == SUMMARY:
                self.summary = event
        self.last_event = max((e.created_at for e in events), default=0.0)
        self.calls: dict[str, ContentBlock] = {}  # tool_use id -> block, from the history
        self._scanned = 0
        self._compactions: list[int] = []  # history indexes of replies with a compaction
        # the last view by stub_all, with what it was computed for: the next one extends it
        # by the messages appended since, instead of going over the whole thread again
        self._last: dict[bool, tuple[tuple[Any, ...], _View, Message]] = {}
        self._sizes: dict[tuple[str, int], int] = {}
        self._rest: tuple[Any, int] = (None, 0)
        # tool_use ids before the view's start, for that start (and history)
        self._before: tuple[int, set[str], Message | None] = (-1, set(), None)
        self.since_edit = policy.edit_every  # the first request may edit
        self.baseline: tuple[int, int] | None = None  # (prompt tokens reported, estimated)
        self.ratio = 1.0
        self.force = False
        self.retries = 0
        self.forgotten: set[str] = set()
        self.compact_now = False
        self.armed = False
        self.sent: tuple[int, int] | None = None  # (messages, rest) estimated, last request
        self.window = model_context(model, policy.windows).window
        self.edits = 0
        self.largest = 0

    # -- opening ------------------------------------------------------------------

    async def open(self, history: Sequence[Message]) -> None:
        """Forget, in the memo, what the view hides; take the last reply's usage as the
        baseline when nothing changed the view since; count the requests since the last
        edit (the schedule spans runs)."""
        view = self._view(history)
        await self._forget_hidden(view)
        replies = [i for i, m in enumerate(history) if m.role == "assistant"]
        self.since_edit = sum(1 for i in replies if history[i].created_at > self.last_event)
        if not self.last_event:
            self.since_edit = self.policy.edit_every
        if not replies:
            return
        last = history[replies[-1]]
        usage = last.metadata.get("usage")
        if (isinstance(usage, dict) and last.created_at >= self.last_event
                and not self._has_compaction(last)):
            reported = sum(int(usage.get(k, 0) or 0) for k in (
                "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
            if reported:  # that request's prompt: the view up to the reply
                self.baseline = (reported, self._size(self._view(history[:replies[-1]])))

    # -- the view -----------------------------------------------------------------

    def _scan(self, history: Sequence[Message]) -> None:
        for index in range(self._scanned, len(history)):
            message = history[index]
            if message.role == "assistant":
                for block in blocks_of(message):
                    kind = block.get("type")
                    if kind == "tool_use":
                        self.calls[str(block.get("id"))] = block
                    elif kind == "compaction" and block.get("content") and (
                            not self._compactions or self._compactions[-1] != index):
                        self._compactions.append(index)
        self._scanned = max(self._scanned, len(history))

    @staticmethod
    def _has_compaction(message: Message) -> bool:
        return message.role == "assistant" and any(
            b.get("type") == "compaction" and b.get("content") for b in blocks_of(message))

    def _view(self, history: Sequence[Message], *, stub_all: bool = True) -> _View:
        """The messages shown: from the latest compaction or summary on, cleared results
        stubbed (all of them when ``stub_all``, else those the client clears itself),
        oversized blocks clipped."""
        self._scan(history)
        count = len(history)
        start = next((i for i in reversed(self._compactions) if i < count), 0)
        lead = None
        if self.summary is not None:
            through = str(self.summary.data.get("through"))
            at = next((i for i, m in enumerate(history) if m.id == through), None)
            if at is not None and at + 1 > start:
                start, lead = at + 1, self.summary
        if self._before[0] != start or self._before[2] is not history[0]:
            before: set[str] = set()
            for message in history[:start]:
                before.update(str(b.get("id")) for b in blocks_of(message)
                              if b.get("type") == "tool_use")
            self._before = (start, before, history[0] if history else None)
        # What a message shows depends on the message, its place (the first one shown),
        # ``stub_all`` and what is cleared (which only grows): the view computed last for
        # the same of those, over a prefix of this history, is only extended.
        params = (start, lead, len(self.cleared), self._before)
        last = self._last.get(stub_all)
        if last is not None and last[0] == params and start < last[1].end <= count and (
                history[last[1].end - 1] is last[2]):
            done = last[1]
            view = _View(list(done.messages), list(done.keys), start, set(done.hidden),
                         list(done.in_view), done.end, done.size, done.sized)
        else:
            view = _View([], [], start, set(self._before[1]), [], start)
            if lead is not None:
                view.messages.append(Message(role="user", id=f"summary_{lead.id}", content=[
                    {"type": "text", "text": "<summary of the earlier conversation>\n"
                     f"{lead.data.get('summary', '')}\n</summary>"}]))
                view.keys.append((view.messages[-1].id, 0))
        self._extend(view, history, stub_all)
        if view.end > start:
            self._last[stub_all] = (params, view, history[view.end - 1])
        return view

    def _extend(self, view: _View, history: Sequence[Message], stub_all: bool) -> None:
        """Add the messages of ``history`` after ``view.end`` to ``view``."""
        messages, keys, hidden, in_view = view.messages, view.keys, view.hidden, view.in_view
        limit = max(2000, int(self.budget * 0.25) * 3)  # characters a block may keep
        for index in range(view.end, len(history)):
            message = history[index]
            whole = blocks = blocks_of(message)
            if index == view.start and message.role == "assistant":
                at = next((i for i, b in enumerate(blocks) if b.get("type") == "compaction"),
                          None)
                if at:
                    blocks = blocks[at:]
            changed: list[ContentBlock] | None = None
            edits = 0
            for place, block in enumerate(blocks):
                new, weight = self._shown(block, limit, stub_all, in_view, hidden)
                if weight:  # a stub weighs 1, a clip 1000: the key of the copy's size
                    changed = changed if changed is not None else list(blocks)
                    changed[place] = new
                    edits += weight
            # a message stored as a string is sent as its blocks
            if changed is None and blocks is whole and isinstance(message.content, list):
                messages.append(message)
            else:
                messages.append(Message(role=message.role, content=changed or blocks,
                                        id=message.id, created_at=message.created_at))
                edits += 1_000_000 * (len(whole) - len(blocks))
            keys.append((message.id, edits if stub_all else -1 - edits))
        view.end = len(history)

    def _shown(self, block: ContentBlock, limit: int, stub_all: bool, in_view: list[str],
               hidden: set[str]) -> tuple[ContentBlock, int]:
        """The block as the request shows it, and how it changed: 0 not, 1 stubbed,
        1000 clipped."""
        kind = block.get("type")
        if kind == "tool_use":
            in_view.append(str(block.get("id")))
            return block, 0
        if kind == "tool_result":
            call_id = str(block.get("tool_use_id"))
            if call_id in self.cleared:
                hidden.add(call_id)
                if not stub_all:  # the API clears it (api_edit): sent whole
                    return block, 0
                size = len(text_of(block.get("content")))
                stub = {k: v for k, v in block.items() if k != "content"}
                stub["content"] = stub_text(self.calls.get(call_id), size)
                return stub, 1
            text = text_of(block.get("content"))
            if len(text) > limit:
                return {**{k: v for k, v in block.items() if k != "content"},
                        "content": clip(text, limit)}, 1000
            return block, 0
        if kind == "text" and len(str(block.get("text", ""))) > limit:
            return {**block, "text": clip(str(block["text"]), limit)}, 1000
        return block, 0

    def _size_of(self, message: Message, key: tuple[str, int]) -> int:
        """Estimated tokens of a message of a view (cached: stored messages never change,
        and a shown copy changes only with how many of its blocks changed)."""
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = estimate_tokens(message.to_param())
        return size

    def _sizes_of(self, view: _View) -> list[int]:
        return [self._size_of(message, key)
                for message, key in zip(view.messages, view.keys, strict=True)]

    def _size(self, view: _View) -> int:
        """Estimated tokens of the view's messages. The sum so far is kept on the view,
        which only ever grows by messages appended (and a view extends the last one), so
        a request adds the new messages' sizes instead of going over the whole thread."""
        for message, key in zip(view.messages[view.sized:], view.keys[view.sized:],
                                strict=True):
            view.size += self._size_of(message, key)
        view.sized = len(view.messages)
        return view.size

    # -- one request ----------------------------------------------------------------

    async def request(self, history: list[Message],
                      build: Callable[[Sequence[Message]], dict[str, Any]]) -> dict[str, Any]:
        """The next request over ``history``: edited first if it is due (see
        :class:`~agentrt.context.ContextPolicy`), with the API's edits attached."""
        if not self.chain:
            return build(history)
        view = self._view(history)
        request = build(view.messages)
        overhead = self._overhead(request)
        size = self._size(view)
        measured = self._measure(size, overhead)
        if self.counter is not None and _CLOSE * self.budget < measured < 1.1 * self.budget:
            exact = await self.counter.count_tokens(self._final(history, build, view, request))
            self.log.debug("context.counted", estimated=measured, counted=exact)
            measured = exact
            self.baseline = (exact, size)
        trigger = self.policy.trigger_fraction * self.budget
        over = measured > self.budget or self.force
        due = measured > trigger and self.since_edit >= self.policy.edit_every
        self.since_edit += 1
        # the API compacts when its count passes the trigger: armed from half the budget,
        # so the request it compacts is still under the budget
        self.armed = self.chain[0] == "api_compact" and measured > (
            self.policy.target_fraction * self.budget)
        if over or due:
            view = await self._edit(history, view, overhead, measured)
            request = build(view.messages)
            size = self._size(view)
        self.sent = (size, overhead)
        await self._forget_hidden(view)
        return self._final(history, build, view, request)

    def _final(self, history: list[Message], build: Callable[[Sequence[Message]],
               dict[str, Any]], view: _View, request: dict[str, Any]) -> dict[str, Any]:
        """The request as sent: ``request`` (over the client's view) or, when the API clears
        results itself, one over the API's view (cleared results sent whole); the API's
        edits attached."""
        api_edit = "api_edit" in self.chain
        if api_edit and self.cleared:
            request = build(self._view(history, stub_all=False).messages)
        edits: list[dict[str, Any]] = []
        betas: list[str] = []
        cleared = sum(1 for i in view.in_view if i in self.cleared)
        if api_edit and cleared:
            kept = len(view.in_view) - cleared
            edits.append({"type": "clear_tool_uses_20250919",
                          "trigger": {"type": "tool_uses", "value": kept},
                          "keep": {"type": "tool_uses", "value": kept}})
            betas.append(BETA_CONTEXT_EDITING)
        if self.compact_now or self.armed:
            # compact_now: this very request (a fallback, the client's edits not enough)
            fraction = (self.policy.target_fraction if self.compact_now
                        else self.policy.trigger_fraction)
            edits.append({"type": "compact_20260112", "trigger": {
                "type": "input_tokens", "value": int(fraction * self.budget)}})
            betas.append(BETA_COMPACT)
        if edits:  # a copy: the request may have been counted without them
            request = {**request, "context_management": {"edits": edits}, "betas": betas}
        return request

    def _overhead(self, request: dict[str, Any]) -> int:
        """Estimated tokens of the request without its messages (tools, system), cached
        while the tool names and the system prompt stay the same."""
        key = (tuple(str(t.get("name")) for t in request.get("tools", ())),
               request.get("system"))
        if self._rest[0] != key:
            self._rest = (key, estimate_tokens({k: v for k, v in request.items()
                                                if k != "messages"}))
        return self._rest[1]

    def _measure(self, size: int, overhead: int) -> int:
        """Tokens of the request, its messages estimated at ``size``: what the API reported
        for the previous one plus an estimate of what changed since; without it, the
        estimate scaled by how far the last estimate was from what the API reported."""
        if self.baseline is not None:
            reported, estimated = self.baseline
            return max(0, reported + size - estimated)
        return int((overhead + size) * self.ratio)

    async def _edit(self, history: list[Message], view: _View, overhead: int,
                    measured: int) -> _View:
        """Apply the chain's strategies, oldest end first, until the request is at most
        the target; returns the new view."""
        target = self.policy.target_fraction * self.budget
        self.ratio = max(0.25, measured / max(1, overhead + self._size(view)))
        self.force = False
        self.compact_now = False
        self.since_edit = 0
        self.baseline = None  # what the API reported no longer describes the view
        room = target / self.ratio - overhead  # estimated tokens the messages may keep
        for strategy in self.chain:
            if self._size(view) <= room:
                break
            if strategy in ("stub", "api_edit"):
                await self._clear(view, strategy, room, measured)
            elif strategy == "api_compact":
                if (overhead + self._size(view)) * self.ratio < 0.95 * self.window:
                    self.compact_now = True  # the API compacts this very request
                    break
                continue  # too long for the API to take at all: the client summarizes
            elif strategy == "summary":
                await self._summarize(history, view, room, measured)
            view = self._view(history)
        self.edits += 1
        self.log.info("context.edited", strategies=list(self.chain), tokens_before=measured,
                      tokens_after=int((overhead + self._size(view)) * self.ratio),
                      budget=self.budget, compact=self.compact_now)
        return view

    async def _clear(self, view: _View, strategy: str, room: float, before: int) -> None:
        """Clear the oldest tool results shown until the view's messages fit ``room``
        tokens, keeping the newest ``keep_tool_results``."""
        sizes: dict[str, int] = {}
        for message in view.messages:
            for block in blocks_of(message):
                if block.get("type") == "tool_result":
                    sizes[str(block.get("tool_use_id"))] = estimate_tokens(block)
        candidates = [i for i in view.in_view if i in sizes and i not in self.cleared]
        candidates = candidates[:max(0, len(candidates) - self.policy.keep_tool_results)]
        size = self._size(view)
        chosen: list[str] = []
        for call_id in candidates:
            if size <= room:
                break
            stub = estimate_tokens({"type": "tool_result", "tool_use_id": call_id,
                                    "content": stub_text(self.calls.get(call_id), 0)})
            size -= max(0, sizes[call_id] - stub)
            chosen.append(call_id)
        if not chosen:
            return
        for call_id in chosen:
            self.cleared[call_id] = strategy
        await self._record(ThreadEvent(CLEARED, {
            "v": EVENT_VERSION, "strategy": strategy, "tool_use_ids": chosen,
            "tokens_before": before, "budget": self.budget}))
        self.log.info("context.cleared", strategy=strategy, results=len(chosen),
                      total_cleared=len(self.cleared))

    async def _summarize(self, history: list[Message], view: _View, room: float,
                         before: int) -> None:
        """Replace the oldest messages shown by a summary the model writes, so that the
        rest fits ``room`` tokens; the newest ``keep_messages`` are always kept."""
        lead = 1 if self.summary is not None and view.keys and view.keys[0][0] == (
            f"summary_{self.summary.id}") else 0
        sizes = self._sizes_of(view)[lead:]
        tails = [0] * (len(sizes) + 1)
        for index in range(len(sizes) - 1, -1, -1):
            tails[index] = tails[index + 1] + sizes[index]
        last = len(history) - self.policy.keep_messages
        cuts = [i for i in range(view.start + 1, last + 1)
                if history[i].role == "assistant" or not any(
                    b.get("type") == "tool_result" for b in blocks_of(history[i]))]
        if not cuts:
            return
        allowance = self.policy.summary_max_tokens + 50
        cut = next((c for c in cuts if tails[c - view.start] + allowance <= room), cuts[-1])
        previous = str(self.summary.data.get("summary", "")) if (
            lead and self.summary is not None) else ""
        request = summary_request(
            self.policy.summary_model or self.model, self.policy.summary_max_tokens,
            transcript(previous, history[view.start:cut], self.calls,
                       room=max(4000, (self.budget - self.policy.summary_max_tokens - 1000) * 3)))
        reply: ModelReply | None = None
        async for item in self.summarizer.turn(request, stream=False, logger=self.log):
            if isinstance(item, ModelReply):
                reply = item
        assert reply is not None
        self.add_usage(reply.usage)
        text = "".join(str(b.get("text", "")) for b in reply.content
                       if b.get("type") == "text").strip() or "(no summary)"
        event = ThreadEvent(SUMMARY, {
            "v": EVENT_VERSION, "through": history[cut - 1].id, "summary": text,
            "messages": cut - view.start, "model": reply.model, "usage": reply.usage.to_json(),
            "tokens_before": before, "budget": self.budget})
        await self._record(event)
        self.summary = event
        self.log.info("context.summarized", messages=cut - view.start,
                      summary_tokens=reply.usage.output_tokens,
                      input_tokens=reply.usage.prompt_tokens)

    async def _record(self, event: ThreadEvent) -> None:
        await self.store.append_events(self.thread_id, [event])
        self.last_event = event.created_at

    async def _forget_hidden(self, view: _View) -> None:
        new = [i for i in view.hidden if i not in self.forgotten]
        if new:
            self.forgotten.update(new)
            blocks = [self.calls[i] for i in new if i in self.calls]
            if blocks:
                await self.forget(blocks)

    # -- after the request ----------------------------------------------------------

    async def observe(self, reply: ModelReply) -> None:
        """What the reply says of the context: the prompt's size and, when the API
        compacted it, that the view now starts at the reply's compaction block (stored
        with the reply by the loop, and sent back as the API requires)."""
        self.retries = 0
        self.compact_now = False
        reported = reply.usage.prompt_tokens
        self.largest = max(self.largest, reported)
        if any(b.get("type") == "compaction" and b.get("content") for b in reply.content):
            self.baseline = None
            self.since_edit = 0
            await self._record(ThreadEvent(COMPACTED, {
                "v": EVENT_VERSION, "message_id": reply.id, "budget": self.budget,
                "usage": reply.usage.to_json()}))
            self.log.info("context.compacted", message_id=reply.id)
        elif reported and self.sent is not None:
            size, overhead = self.sent
            self.baseline = (reported, size)
            self.ratio = min(4.0, max(0.25, reported / max(1, size + overhead)))
        applied = (reply.context or {}).get("applied_edits")
        if applied:
            self.log.debug("context.api_edits", applied=applied)
        if reply.stop_reason == "model_context_window_exceeded":
            self.force = True

    def overflowed(self, error: ModelError) -> bool:
        """Whether a refused request is one the window can make fit: ``prompt is too
        long``; then the next request is edited whatever the schedule says."""
        text = str(error)
        if error.status_code != 400 or "prompt is too long" not in text:
            return False
        if self.retries >= _MAX_RETRIES or not self.chain:
            return False
        self.retries += 1
        self.force = True
        self.baseline = None
        self.ratio = max(self.ratio, 1.0) * 1.5
        self.log.warning("context.overflowed", error=text[:200], retry=self.retries)
        return True
