"""One caller of the isolation tests, in its own OS process: the default pipeline with
the Redis stages, one call of a read whose result depends on the caller.

argv: redis_url prefix function thread_id user [identity JSON]. The user reaches the
tool through ``RunContext.deps``; prints the result's text and the stage that answered.
"""

from __future__ import annotations

import json
import sys

import anyio

from agentrt import RunContext, Tool, function, load_settings
from agentrt.pipeline import (
    CallContext,
    Execute,
    PipelineResources,
    ResponseProcessor,
    TurnOutcomes,
    build_pipeline,
    default_stages,
)
from agentrt.tools import ToolRegistry


class Vault(Tool):
    name = "vault"

    @function(read_only=True, ttl=600)
    async def my_secret(self, ctx: RunContext) -> str:
        """The caller's own secret: depends on who asks, not on the arguments."""
        return f"secret-of-{ctx.deps['user']}"

    @function(read_only=True, ttl=600, public=True)
    async def opening_hours(self) -> str:
        """The same for everyone."""
        return "9-17"


async def main() -> None:
    from agentrt._redis import RedisGate

    url, prefix, function_name, thread_id, user = sys.argv[1:6]
    identity = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    gate = RedisGate(url, prefix=prefix, timeout=2.0)
    res = PipelineResources.from_settings(load_settings(thread_store="memory"), redis=gate)
    processor = ResponseProcessor(build_pipeline(
        default_stages(shared=True), res, Execute(timeout=5, max_result_chars=10_000)))
    turn = TurnOutcomes([{"type": "tool_use", "id": "toolu_1", "name": function_name,
                          "input": {}}])
    ctx = CallContext(RunContext(thread_id=thread_id, run_id="run_1", agent="isolation",
                                 identity=identity, deps={"user": user}))
    await processor.process(turn, ctx, ToolRegistry([Vault()]))
    outcome = turn.outcomes[0]
    assert outcome is not None
    sys.stdout.write(json.dumps({"content": outcome.content, "source": outcome.source}) + "\n")
    await gate.aclose()


if __name__ == "__main__":
    anyio.run(main)
