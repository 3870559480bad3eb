"""Typed answers: an agent whose answer is an ``Invoice`` (a pydantic model), not prose.

``output_type = Invoice`` sends the invoice's JSON schema as the API's structured output
(``output_config.format``), beside the agent's tools. The model looks the order up with a
tool, then answers with the invoice's JSON, which the runtime validates into
``RunResult.output``. The scripted model (``REPLIES`` below) gets the total wrong on its
first try, as real models do with arithmetic: the schema cannot say "total is the sum of
the lines" but the model's validator can, so the model is told what failed and answers
again (``output_retries``). The answer streams in as ``PartialOutput`` events.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/typed_answer.py
    agentrt threads show THREAD_ID    # the attempts, and what the model was told

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import argparse
from enum import StrEnum

import anyio
from pydantic import BaseModel, Field, model_validator

from agentrt import Agent, PartialOutput, RunFinished, Tool, TurnFinished, function
from agentrt.testing import runtime_or_replay

TASK = "Write the invoice for order A-17."

_ORDERS = {"A-17": {"customer": "Alice", "lines": [
    {"item": "Desk lamp", "qty": 2, "unit_price": 24.5},
    {"item": "USB-C cable", "qty": 3, "unit_price": 9.99}]}}


class Currency(StrEnum):
    EUR = "EUR"
    USD = "USD"


class Line(BaseModel):
    item: str
    qty: int = Field(gt=0)
    unit_price: float


class Invoice(BaseModel):
    customer: str
    currency: Currency
    lines: list[Line]
    total: float
    note: str | None = None

    @model_validator(mode="after")
    def _total_is_the_sum(self) -> Invoice:
        expected = round(sum(line.qty * line.unit_price for line in self.lines), 2)
        if abs(self.total - expected) > 0.005:
            raise ValueError(f"total {self.total} is not the sum of the lines ({expected})")
        return self


class Orders(Tool):
    @function(read_only=True)
    async def get_order(self, order_id: str) -> dict[str, object]:
        """An order's customer and lines (item, quantity, unit price in euros).

        Args:
            order_id: The order id, like "A-17".
        """
        return _ORDERS.get(order_id, {"error": f"no order {order_id}"})


class Billing(Agent):
    system = "You write invoices from orders. Look the order up first."
    tools = (Orders,)
    output_type = Invoice
    output_retries = 2
    max_iterations = 6


async def main(task: str) -> None:
    async with runtime_or_replay(REPLIES) as runtime:
        agent = Billing(runtime)
        print(f"you> {task}")
        shown = 0
        async for event in agent.stream(task):
            if isinstance(event, PartialOutput) and len(event.output.get("lines", ())) > shown:
                shown = len(event.output["lines"])  # a line of the invoice has arrived
                print(f"  ... streaming: {shown} line(s) so far")
            elif isinstance(event, TurnFinished):
                shown = 0  # an answer that fails validation is sent again, from the start
            elif isinstance(event, RunFinished):
                result = event.result
        messages = await runtime.store.messages(result.thread_id)
    retries = [m for m in messages if "output_retry" in m.metadata]
    for message in retries:
        print(f"  the model was told: {message.content.splitlines()[1]}")
    invoice = result.output
    assert isinstance(invoice, Invoice)
    print(f"Invoice for {invoice.customer}, {len(invoice.lines)} lines, total "
          f"{invoice.total:.2f} {invoice.currency.value}")
    print(f"  [attempts {len(retries) + 1}, model turns {result.iterations}, thread "
          f"{result.thread_id}]")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages. An "output" is sent as the JSON text.
REPLIES = [
    {"tool_calls": [{"name": "get_order", "input": {"order_id": "A-17"}}]},
    {"output": {"customer": "Alice", "currency": "EUR", "total": 76.97,
                "lines": [{"item": "Desk lamp", "qty": 2, "unit_price": 24.5},
                          {"item": "USB-C cable", "qty": 3, "unit_price": 9.99}]},
     "tokens_per_second": 2000},
    {"output": {"customer": "Alice", "currency": "EUR", "total": 78.97,
                "lines": [{"item": "Desk lamp", "qty": 2, "unit_price": 24.5},
                          {"item": "USB-C cable", "qty": 3, "unit_price": 9.99}]},
     "tokens_per_second": 2000},
]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default=TASK)
    anyio.run(main, parser.parse_args().task)
