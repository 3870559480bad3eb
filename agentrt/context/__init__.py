"""Long threads that never hit the context window.

A :class:`ContextPolicy` (an agent's ``context_policy``, else the ``context_*``
settings) keeps every request of a thread under a token budget: the API's own context
editing or compaction where the model takes it, else old tool results replaced by
stubs, and finally a summary of the oldest turns written by the model. The stored
thread stays whole; what was cleared or summarized is kept as thread events. See
``docs/concepts/context.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._policy import (
    BETA_COMPACT,
    BETA_CONTEXT_EDITING,
    MODELS,
    ContextPolicy,
    ModelContext,
    Strategy,
    model_context,
    register_model,
)
from ._summary import SUMMARY_SYSTEM
from ._window import CLEARED, COMPACTED, SUMMARY, ThreadWindow, TokenCounter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..llm._usage import Usage
    from ..thread._messages import ContentBlock, Message
    from ..thread._store import ThreadStore

__all__ = ["BETA_COMPACT", "BETA_CONTEXT_EDITING", "CLEARED", "COMPACTED", "MODELS", "SUMMARY",
           "SUMMARY_SYSTEM", "ContextPolicy", "ModelContext", "Strategy", "ThreadWindow",
           "TokenCounter", "model_context", "open_window", "register_model"]


async def open_window(policy: ContextPolicy, *, model: Any, model_name: str, max_tokens: int,
                      store: ThreadStore, thread_id: str, history: list[Message],
                      forget: Callable[[list[ContentBlock]], Awaitable[None]],
                      add_usage: Callable[[Usage], None], log: Any = None,
                      new_thread: bool = False) -> ThreadWindow:
    """The run's window over a thread: its context events read, what they hide
    forgotten by the memo. ``model`` answers the summary requests (and counts tokens,
    if it can). ``new_thread``: created for this run just now, it has no events to read."""
    events = [] if new_thread else await store.events(thread_id)
    counter = model if callable(getattr(model, "count_tokens", None)) else None
    window = ThreadWindow(policy=policy, model=model_name, max_tokens=max_tokens, store=store,
                          thread_id=thread_id, events=events, summarizer=model,
                          counter=counter, forget=forget, add_usage=add_usage, log=log)
    await window.open(history)
    return window
