"""Shared by the JIT tests: a manifest of the fixture tools, written without leaving
any fixture module imported, and an agent harness on the in-process model double (or,
``sdk=True``, on the real SDK over HTTP to the fake Messages API)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from agentrt import Agent, MemoryThreadStore, Runtime, load_settings
from agentrt.jit import describe, render_manifest
from agentrt.jit.catalog import import_tool
from agentrt.testing import FakeAnthropicServer, ScriptedModel

from .fixtures import path, reset

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from agentrt import ThreadStore
    from agentrt.testing import Step

SEARCH = path("search", "WebSearch")
FILES = path("files", "Files")
PRESENTATION = path("presentation", "Presentation")
BROWSER = path("browser", "Browser")
MAILER = path("mailer", "Mailer")
SHOUTY = path("shouty", "Shouty")
GATED = path("gated", "Gated")
CATALOG = (SEARCH, FILES, PRESENTATION, BROWSER, MAILER, SHOUTY)


def write_manifest(directory: Path, paths: Sequence[str] = CATALOG,
                   name: str = "tools.manifest.json") -> Path:
    """Import ``paths`` once to describe them, then unload them again."""
    text = render_manifest(describe(import_tool(p), p) for p in paths)
    file = directory / name
    file.write_text(text, encoding="utf-8")
    reset()
    return file


@asynccontextmanager
async def harness(agent_cls: type[Agent], steps: Sequence[Step] | Any, *,
                  store: ThreadStore | None = None, identity: dict[str, str] | None = None,
                  deps: dict[str, Any] | None = None, stream: bool = False, sdk: bool = False,
                  min_cache_tokens: int = 1024,
                  strict_deferred: bool = False) -> AsyncIterator[tuple[Agent, Any]]:
    """The agent and what answered it (``.requests``): a ScriptedModel, or with ``sdk``
    (mark the test ``integration``) a FakeAnthropicServer the real SDK talks to;
    ``strict_deferred``: the model cannot call a deferred tool before it is revealed."""
    settings = load_settings(thread_store="memory", stream=stream, llm_max_retries=0)
    store = store or MemoryThreadStore()
    if not sdk:
        model = ScriptedModel(steps, min_cache_tokens=min_cache_tokens,
                              strict_deferred=strict_deferred)
        async with Runtime(settings, model=model, store=store) as runtime:
            yield agent_cls(runtime, identity=identity, deps=deps), model
        return
    async with FakeAnthropicServer(steps, min_cache_tokens=min_cache_tokens,
                                   strict_deferred=strict_deferred) as fake, \
            fake.client() as client, Runtime(settings, client=client, store=store) as runtime:
        yield agent_cls(runtime, identity=identity, deps=deps), fake
