"""With the anthropic SDK's own OpenTelemetry spans: one span per model request, never two.

agentrt's ``chat`` span when the runtime makes the SDK client (the SDK's spans are
turned off on it); the SDK's own span, under the run's, when the application passes a
client whose spans are on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace

from agentrt import Runtime, load_settings
from agentrt.testing import FakeAnthropicServer

from .support import Recorder, shop_module

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Also the global tracer provider, where the SDK's spans go by default."""
    found = Recorder()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: found.tracer_provider)
    yield found
    found.shutdown()


async def _replies() -> FakeAnthropicServer:
    from agentrt.testing import replies_by_turn

    return FakeAnthropicServer(replies_by_turn(shop_module().REPLIES))


async def test_the_runtimes_own_client_leaves_the_model_span_to_agentrt(
        recorder: Recorder) -> None:
    shop = shop_module()
    async with await _replies() as server:
        settings = load_settings(thread_store="memory", anthropic_base_url=server.base_url,
                                 anthropic_api_key="test-key", otel=True)
        async with Runtime(settings) as runtime:
            await shop.ShopAgent(runtime).run(shop.TASK)
    names = [s.name for s in recorder.finished()]
    assert names.count("chat claude-haiku-5-5") == 4
    assert not [n for n in names if n.startswith("anthropic.")]


async def test_a_client_with_its_own_spans_keeps_them_under_the_run(recorder: Recorder) -> None:
    shop = shop_module()
    async with await _replies() as server, server.client(
            open_telemetry={"tracer_provider": recorder.tracer_provider}) as client, Runtime(
            load_settings(thread_store="memory"), client=client,
            tracer_provider=recorder.tracer_provider) as runtime:
        assert runtime.telemetry is not None and not runtime.telemetry.chat_spans
        await shop.ShopAgent(runtime).run(shop.TASK)
    tree = recorder.tree()
    assert not [n for n in tree if n.strip().startswith("chat")]
    model_spans = [n for n in tree if "anthropic" in n]
    assert len(model_spans) == 4
    assert all(n.startswith("  ") and not n.startswith("   ") for n in model_spans), tree
    assert tree[0] == "invoke_agent ShopAgent"
    sdk_span = recorder.named(model_spans[0].strip())[0]
    assert (sdk_span.attributes or {})["gen_ai.operation.name"] == "chat"


async def test_a_client_tracing_elsewhere_leaves_the_chat_span_to_agentrt() -> None:
    """The client's spans would go to the global provider (here OpenTelemetry's no-op
    default), not to the runtime's: agentrt makes the model spans in the runtime's."""
    recorder = Recorder()
    shop = shop_module()
    async with await _replies() as server, server.client() as client, Runtime(
            load_settings(thread_store="memory"), client=client,
            tracer_provider=recorder.tracer_provider) as runtime:
        assert runtime.telemetry is not None and runtime.telemetry.chat_spans
        await shop.ShopAgent(runtime).run(shop.TASK)
    recorder.shutdown()
    names = [s.name for s in recorder.finished()]
    assert names.count("chat claude-haiku-5-5") == 4
