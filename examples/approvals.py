"""Approvals: a refund waits for a person; small ones are approved by a policy in code.

``SupportAgent.refund`` is declared ``requires_approval=True``. The scripted model
(``REPLIES`` below) asks for two refunds in one reply: $8, which the
agent's ``approval_policy`` approves itself (under $20), and $120, which it leaves to
a person. The run stops with ``stop_reason="approval_required"``; nothing of it stays
in memory. A new runtime (as another process would, on the same SQLite file) lists
the pending call and resumes with the person's decision: the refund runs exactly
once, or the model is told why it was denied.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/approvals.py             # a person approves the $120 refund
    python examples/approvals.py --deny      # ... or denies it

The same from the command line: ``agentrt run examples/approvals.py:SupportAgent
"..."`` exits with 3 and prints the pending calls; ``agentrt resume
examples/approvals.py:SupportAgent THREAD --approve ID`` continues.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anyio

from agentrt import (
    Agent,
    ApprovalRequest,
    RunContext,
    RunFinished,
    Tool,
    ToolCallFinished,
    Verdict,
    function,
    load_settings,
)
from agentrt.testing import runtime_or_replay, show_run

TASK = "Please refund order A-1 ($120, arrived broken) and B-2 ($8, late delivery)."


class Payments(Tool):
    """Refunds through a payment provider (simulated): every refund is recorded."""

    def __init__(self) -> None:
        self.refunded: list[tuple[str, float]] = []

    @function(read_only=True, ttl=60)
    async def get_order(self, order_id: str) -> dict[str, object]:
        """An order's amount and status.

        Args:
            order_id: The order, like "A-1".
        """
        return {"order_id": order_id, "status": "delivered"}

    @function(requires_approval=True, approval_reason="refunds move money",
              invalidates=["orders"])
    async def refund(self, order_id: str, amount: float) -> str:
        """Refund an order (a person approves it first).

        Args:
            order_id: The order to refund.
            amount: The amount, in dollars.
        """
        self.refunded.append((order_id, amount))
        return f"refunded ${amount:.2f} on {order_id}"


class SupportAgent(Agent):
    system = "You are a support agent. Refund what the customer is owed."
    tools = (Payments,)
    max_iterations = 6

    def approval_policy(self, request: ApprovalRequest, run: RunContext) -> Verdict:
        """Small refunds need no person: approve under $20, ask above."""
        amount = request.input.get("amount")
        if request.name == "refund" and isinstance(amount, int | float) and amount < 20:
            return "approve"
        return "ask"


async def main(deny: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(sqlite_path=Path(tmp) / "threads.db", thread_store="sqlite")
        async with runtime_or_replay(REPLIES, settings) as runtime:
            agent = SupportAgent(runtime, identity={"user": "ann"})
            result = await show_run(agent, TASK)
            print(f"stop_reason: {result.stop_reason}")
            for call in result.pending:
                print(f"  waiting: {call.name}({call.input}) because {call.reason} "
                      f"[id {call.id}]")
        # later, in another process: nothing of the run was kept in memory
        async with runtime_or_replay(REPLIES, settings) as runtime:
            agent = SupportAgent(runtime, identity={"user": "ann"})
            [call] = await agent.pending(result.thread_id)
            if deny:
                print(f"a person denies {call.id}: 'needs a photo of the damage'")
                events = agent.resume_stream(result.thread_id,
                                             deny={call.id: "needs a photo of the damage"})
            else:
                print(f"a person approves {call.id}")
                events = agent.resume_stream(result.thread_id, approve=[call.id])
            async for event in events:
                if isinstance(event, ToolCallFinished):
                    print(f"  <- {event.name}: {event.content}")
                elif isinstance(event, RunFinished):
                    print(f"assistant> {event.result.text}")
                    print(f"stop_reason: {event.result.stop_reason}")
            tool = agent.registry.tool("payments")
            assert isinstance(tool, Payments)
            print(f"refunds run in this process: {tool.refunded}")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "I'll refund both orders.",
     "tool_calls": [
         {"name": "refund", "input": {"order_id": "A-1", "amount": 120}, "id": "toolu_refund_a1"},
         {"name": "refund", "input": {"order_id": "B-2", "amount": 8}, "id": "toolu_refund_b2"}]},
    {"text": "Done: each refund's result is above; I have told the customer."},
]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deny", action="store_true", help="deny the large refund")
    anyio.run(main, parser.parse_args().deny)
