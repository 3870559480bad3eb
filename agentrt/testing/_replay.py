"""The switch examples and demos use: the real Messages API when an API key is set, else
scripted replies on the fake server, so one file runs as it is, from a fresh clone or
copied into a project, with no account.

The replies are indexed by the conversation, not consumed in order: the request whose
thread already holds ``n`` assistant messages gets reply ``n``. So a thread resumed by
another process, or many threads served at once (a service), each get the reply that
fits where they are.
"""

from __future__ import annotations

import os
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..runtime import Runtime
from ..settings import load_settings
from ._script import Reply, Script, parse_replies
from ._server import FakeAnthropicServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from ..settings import Settings
    from ._script import RecordedRequest, Step

__all__ = ["has_api_key", "replies_by_turn", "runtime_or_replay"]

_OUT_OF_REPLIES = Reply(text="(The scripted replies of this offline example end here. Set "
                             "ANTHROPIC_API_KEY to talk to a real model.)")


def has_api_key(settings: Settings | None = None) -> bool:
    """Whether the real API can be called: a key in the settings (``ANTHROPIC_API_KEY`` or
    ``AGENTRT_ANTHROPIC_API_KEY``, from the environment, ``.env`` or the settings file), or
    the SDK's ``ANTHROPIC_AUTH_TOKEN``."""
    settings = settings or load_settings()
    return settings.anthropic_api_key is not None or bool(os.environ.get("ANTHROPIC_AUTH_TOKEN"))


def replies_by_turn(replies: Sequence[Mapping[str, Any]]) -> Script:
    """A script answering a request whose thread holds ``n`` assistant messages with
    ``replies[n]`` (replay-file entries: ``{"text": ...}``, ``{"tool_calls": [...]}``)."""
    answers = parse_replies(replies)  # a malformed entry fails now, naming its index

    async def answer(request: RecordedRequest) -> Step:
        n = sum(1 for m in request.body.get("messages", []) if m.get("role") == "assistant")
        return answers[n] if n < len(answers) else _OUT_OF_REPLIES

    return Script(answer)


@asynccontextmanager
async def runtime_or_replay(replies: Sequence[Mapping[str, Any]],
                            settings: Settings | None = None, *,
                            tracer_provider: Any = None, meter_provider: Any = None,
                            **overrides: Any) -> AsyncIterator[Runtime]:
    """An entered :class:`~agentrt.Runtime` on the real Messages API when an API key is set
    (:func:`has_api_key`), else on a :class:`FakeAnthropicServer` answering with
    ``replies`` (:func:`replies_by_turn`), over real HTTP through the real SDK.

    ``settings`` (or ``load_settings(**overrides)``) configure the runtime either way, and
    ``tracer_provider``/``meter_provider`` go to it as :class:`~agentrt.Runtime` takes them::

        async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
            result = await MyAgent(runtime).run("...")
    """
    settings = settings or load_settings(**overrides)
    async with AsyncExitStack() as stack:
        client = None
        if not has_api_key(settings):
            server = await stack.enter_async_context(FakeAnthropicServer(replies_by_turn(replies)))
            client = await stack.enter_async_context(server.client())
        yield await stack.enter_async_context(Runtime(
            settings, client=client, tracer_provider=tracer_provider,
            meter_provider=meter_provider))
