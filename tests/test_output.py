"""Typed answers (issue 22 B): ``output_type`` asks the API for a JSON answer with
``output_config.format`` and validates it into ``RunResult.output``; an invalid answer is
sent back with what failed, at most ``output_retries`` times, then OutputValidationError.

The tests marked ``integration`` run through the real SDK to the fake server, which checks
the schema as the API does (a 400 for one it refuses) and the scripted answer against it;
the others on the in-process model double, which applies the same checks."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from agentrt import (
    Agent,
    AgentRtError,
    ConfigError,
    MemoryThreadStore,
    OutputValidationError,
    PartialOutput,
    RunFinished,
    Runtime,
    TextDelta,
    Tool,
    function,
    load_settings,
)
from agentrt._output import OutputSpec
from agentrt.testing import FakeAnthropicServer, Reply, ScriptedModel, ToolUse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from agentrt import RunResult
    from agentrt.testing import Step

pytestmark = pytest.mark.anyio
SDK = pytest.mark.integration


class Currency(StrEnum):
    EUR = "EUR"
    USD = "USD"


class Line(BaseModel):
    item: str
    qty: int = Field(gt=0)  # not in the API's schema subset: the SDK moves it to a description
    unit_price: float


class Invoice(BaseModel):
    number: str
    currency: Currency
    lines: list[Line]
    note: str | None = None  # optional: not required in the schema


@dataclass
class Receipt:
    kind: Literal["receipt"]
    total: float


class Refund(TypedDict):
    kind: Literal["refund"]
    amount: float
    reason: str


INVOICE = {"number": "F-1", "currency": "EUR",
           "lines": [{"item": "lamp", "qty": 2, "unit_price": 30.0}]}
BAD_QTY = {**INVOICE, "lines": [{"item": "lamp", "qty": 0, "unit_price": 30.0}]}


class Books(Tool):
    def __init__(self) -> None:
        self.refunded: list[str] = []

    @function(read_only=True)
    async def get_order(self, order: str) -> dict[str, Any]:
        """An order's lines."""
        return {"order": order, "lines": [{"item": "lamp", "qty": 2, "price": 30.0}]}

    @function(requires_approval=True)
    async def refund(self, order: str) -> str:
        """Refund an order."""
        self.refunded.append(order)
        return "refunded"


class Billing(Agent):
    model = "claude-haiku-5-5"
    system = "You write invoices."
    tools = (Books,)
    output_type = Invoice


@asynccontextmanager
async def harness(steps: Sequence[Step], *, sdk: bool = False, stream: bool = True,
                  agent_cls: type[Agent] = Billing, **options: Any
                  ) -> AsyncIterator[tuple[Agent, Any]]:
    settings = load_settings(thread_store="memory", stream=stream, **options)
    if not sdk:
        model = ScriptedModel(steps)
        async with Runtime(settings, model=model, store=MemoryThreadStore()) as rt:
            yield agent_cls(rt), model
        return
    async with FakeAnthropicServer(steps) as server, server.client() as client, \
            Runtime(settings, client=client, store=MemoryThreadStore()) as rt:
        yield agent_cls(rt), server


# -- 1. the answer is a validated instance, through the API's structured outputs ---------


@pytest.mark.parametrize("sdk", [pytest.param(True, marks=SDK), False], ids=["sdk", "double"])
@pytest.mark.parametrize("stream", [True, False])
async def test_the_answer_is_a_validated_instance(sdk: bool, stream: bool) -> None:
    async with harness([Reply(output=INVOICE)], sdk=sdk, stream=stream) as (agent, server):
        result = await agent.run("Invoice order 7.")
    assert result.output == Invoice.model_validate(INVOICE)
    assert isinstance(result.output, Invoice) and result.output.currency is Currency.EUR
    assert json.loads(result.text) == INVOICE and result.stop_reason == "end_turn"
    sent = server.requests[0].body
    assert sent["output_config"] == {"format": {"type": "json_schema",
                                                "schema": Billing._output_spec.schema}}
    assert sent["tools"][0]["name"] == "get_order"  # tools and the format, together


def test_the_schema_meets_the_apis_rules() -> None:
    schema = OutputSpec.of(Invoice, field="t").schema
    line = schema["$defs"]["Line"]
    assert schema["additionalProperties"] is False and line["additionalProperties"] is False
    assert schema["required"] == ["number", "currency", "lines"]  # note is optional
    assert "exclusiveMinimum" not in line["properties"]["qty"]  # moved to the description
    assert "exclusiveMinimum" in line["properties"]["qty"]["description"]
    assert schema["$defs"]["Currency"]["enum"] == ["EUR", "USD"]


@SDK
@pytest.mark.parametrize(("output_type", "answer", "expected"), [
    (Receipt, {"kind": "receipt", "total": 12.5}, Receipt("receipt", 12.5)),
    (Refund, {"kind": "refund", "amount": 3.0, "reason": "late"},
     {"kind": "refund", "amount": 3.0, "reason": "late"}),
    (Receipt | Refund, {"kind": "refund", "amount": 3.0, "reason": "late"},
     {"kind": "refund", "amount": 3.0, "reason": "late"}),
    (Invoice | Receipt, {"kind": "receipt", "total": 1.0}, Receipt("receipt", 1.0)),
], ids=["dataclass", "typeddict", "union-typeddict", "union-dataclass"])
async def test_dataclasses_typeddicts_and_unions(output_type: Any, answer: Any,
                                                 expected: Any) -> None:
    async with harness([Reply(output=answer)], sdk=True) as (agent, server):
        result = await agent.run("Which is it?", output_type=output_type)
    assert result.output == expected and type(result.output) is type(expected)
    schema = server.requests[0].body["output_config"]["format"]["schema"]
    if "|" in OutputSpec.of(output_type, field="t").name:
        assert len(schema["anyOf"]) == 2  # a union: one schema, anyOf at its root


@SDK
async def test_a_tool_turn_then_the_typed_answer() -> None:
    steps = [Reply(tool_calls=[ToolUse("get_order", {"order": "7"})]), Reply(output=INVOICE)]
    async with harness(steps, sdk=True) as (agent, server):
        result = await agent.run("Invoice order 7.")
    assert result.output == Invoice.model_validate(INVOICE) and result.iterations == 2
    assert result.stats.executed == 1
    assert all(r.body["output_config"]["format"]["type"] == "json_schema"
               for r in server.requests)


async def test_a_run_argument_types_an_untyped_agent() -> None:
    class Plain(Agent):
        model = "claude-haiku-5-5"

    async with harness([Reply(output={"kind": "receipt", "total": 2.0}), Reply(text="hi")],
                       agent_cls=Plain) as (agent, model):
        typed: RunResult[Receipt] = await agent.run("?", output_type=Receipt)
        plain = await agent.run("hello", thread_id=typed.thread_id)
    assert typed.output == Receipt("receipt", 2.0)
    assert plain.output is None and plain.text == "hi"
    assert "output_config" not in model.requests[1].body
    assert typed.to_json()["output"] == {"kind": "receipt", "total": 2.0}


# -- 2. an invalid answer: the model is told what failed, and asked again ----------------


@SDK
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
@pytest.mark.parametrize("stream", [True, False])
async def test_an_invalid_answer_is_sent_back_with_what_failed(stream: bool) -> None:
    async with harness([Reply(output=BAD_QTY), Reply(output=INVOICE)], sdk=True,
                       stream=stream) as (agent, server):
        result = await agent.run("Invoice order 7.")
        stored = await agent.runtime.store.messages(result.thread_id)
    assert result.output == Invoice.model_validate(INVOICE) and result.iterations == 2
    assert json.loads(result.text) == INVOICE  # the last answer only
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]
    told = stored[2]
    assert told.content == ("Your answer is not a valid Invoice:\n"
                            "- lines.0.qty: Input should be greater than 0\n"
                            "Answer again: the whole JSON answer, corrected.")
    assert told.metadata["output_retry"] == 1
    assert told.metadata["output_errors"][0]["loc"] == "lines.0.qty"
    sent = server.requests[1].body["messages"]
    assert sent[-1]["content"][0]["text"] == told.content
    assert json.loads(sent[-2]["content"][0]["text"]) == BAD_QTY


async def test_json_cut_off_is_invalid_too() -> None:
    steps = [Reply(text='{"number": "F-1", "currency": "EU'), Reply(output=INVOICE)]
    async with harness(steps) as (agent, model):
        result = await agent.run("Invoice order 7.")
    assert result.output is not None
    told = model.requests[1].body["messages"][-1]["content"][0]["text"]
    assert told.startswith("Your answer is not a valid Invoice:\n- (the whole answer): "
                           "Invalid JSON")


@SDK
async def test_retries_spent_end_with_a_typed_error() -> None:
    async with harness([Reply(output=BAD_QTY), Reply(output=BAD_QTY)], sdk=True) as (agent, _):
        with pytest.raises(OutputValidationError) as caught:
            await agent.run("Invoice order 7.")
        error = caught.value
        stored = await agent.runtime.store.messages(error.thread_id)
    assert isinstance(error, AgentRtError)
    assert error.attempts == 2 and error.output_type == "Invoice"
    assert error.errors == [{"loc": "lines.0.qty", "msg": "Input should be greater than 0",
                             "type": "greater_than"}]
    assert json.loads(error.text) == BAD_QTY
    assert "not a valid Invoice after 2 attempts: lines.0.qty" in str(error)
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(("setting", "attribute", "requests"), [
    (0, None, 1), (2, None, 3), (0, 1, 2)])
async def test_output_retries_setting_and_attribute(setting: int, attribute: int | None,
                                                    requests: int) -> None:
    class Strict(Billing):
        output_retries = attribute

    steps = [Reply(output=BAD_QTY)] * 4
    async with harness(steps, agent_cls=Strict, output_retries=setting) as (agent, model):
        with pytest.raises(OutputValidationError) as caught:
            await agent.run("Invoice order 7.")
    assert len(model.requests) == requests == caught.value.attempts


async def test_a_refusal_ends_the_run_without_output() -> None:
    async with harness([Reply(text="I can't help with that.", stop_reason="refusal")]) as (
            agent, model):
        result = await agent.run("Invoice a forged order.")
    assert result.stop_reason == "refusal" and result.output is None
    assert len(model.requests) == 1  # a refusal is not retried as an invalid answer


# -- 3. streaming: the answer as it arrives ----------------------------------------------


@pytest.mark.parametrize("sdk", [pytest.param(True, marks=SDK), False], ids=["sdk", "double"])
async def test_partial_output_while_the_answer_streams(sdk: bool) -> None:
    steps = [Reply(output=INVOICE, tokens_per_second=100_000)]
    async with harness(steps, sdk=sdk) as (agent, _):
        events = [e async for e in agent.stream("Invoice order 7.")]
    partials = [e.output for e in events if isinstance(e, PartialOutput)]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 10 and 5 < len(partials) <= len(deltas)
    assert partials[0] == {} or set(partials[0]) <= {"number"}
    assert all(p.get("number") in (None, "F-1") for p in partials)  # no half-sent string
    assert partials[-1] == INVOICE  # the whole answer, then validated:
    assert isinstance(events[-1], RunFinished)
    assert events[-1].result.output == Invoice.model_validate(INVOICE)
    grown = [len(json.dumps(p)) for p in partials]
    assert partials == [p for i, p in enumerate(partials) if i == 0 or p != partials[i - 1]]
    assert max(grown) == grown[-1]


async def test_a_long_answer_is_parsed_a_bounded_number_of_times() -> None:
    long = {**INVOICE, "lines": [{"item": f"item {i}", "qty": i + 1, "unit_price": 1.0}
                                 for i in range(100)]}
    async with harness([Reply(output=long, tokens_per_second=100_000)]) as (agent, _):
        events = [e async for e in agent.stream("Invoice order 7.")]
    partials = [e.output for e in events if isinstance(e, PartialOutput)]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1000 and 50 < len(partials) < 200  # ~22 parses per doubling
    assert partials[-1] == long  # the last one is the whole answer (a flush at the end)
    counts = [len(p.get("lines", ())) for p in partials]
    assert counts == sorted(counts) and counts[-1] == 100


async def test_a_retried_answer_streams_again_from_the_start() -> None:
    async with harness([Reply(output=BAD_QTY), Reply(output=INVOICE)]) as (agent, _):
        events = [e async for e in agent.stream("Invoice order 7.")]
    partials = [e.output for e in events if isinstance(e, PartialOutput)]
    assert BAD_QTY in partials and partials[-1] == INVOICE


# -- 4. the thread: stored, resumed --------------------------------------------------------


async def test_a_typed_run_resumes_after_an_approval() -> None:
    steps = [Reply(tool_calls=[ToolUse("refund", {"order": "7"}, id="toolu_r")]),
             Reply(output=INVOICE)]
    async with harness(steps, stream=False) as (agent, model):
        paused = await agent.run("Refund order 7, then invoice it.")
        assert paused.stop_reason == "approval_required" and paused.output is None
        result = await agent.resume(paused.thread_id, approve=["toolu_r"])
    assert result.output == Invoice.model_validate(INVOICE)
    assert next(t for t in agent.registry if isinstance(t, Books)).refunded == ["7"]
    assert "output_config" in model.requests[1].body


async def test_a_second_typed_run_continues_the_thread() -> None:
    async with harness([Reply(output=INVOICE), Reply(output=BAD_QTY),
                        Reply(output=INVOICE)]) as (agent, model):
        first = await agent.run("Invoice order 7.")
        second = await agent.run("Again.", thread_id=first.thread_id)
    assert first.output == second.output
    assert [m["role"] for m in model.requests[2].body["messages"]] == [
        "user", "assistant", "user", "assistant", "user"]


# -- 5. mistakes are found when the class is defined --------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (int, "expected a pydantic model, a dataclass, a TypedDict or a union of them, got "
          "<class 'int'>"),
    (Invoice | str, "got <class 'str'>"),
    ("Invoice", "got 'Invoice'"),
])
def test_an_output_type_that_is_not_structured_is_refused(value: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"Bad\.output_type: ") as caught:
        type("Bad", (Agent,), {"output_type": value})
    assert expected in str(caught.value)


def test_output_retries_must_be_a_count() -> None:
    with pytest.raises(ConfigError, match=r"Bad.output_retries: expected an int >= 0, got -1"):
        type("Bad", (Agent,), {"output_retries": -1})


async def test_a_run_argument_is_checked_too() -> None:
    async with harness([]) as (agent, _):
        with pytest.raises(ConfigError, match=r"^output_type: expected a pydantic model"):
            await agent.run("?", output_type=list)


class _Elsewhere(Runtime):
    """A runtime whose runs execute elsewhere (as agentrt.temporal's do)."""

    dispatched = 0

    def dispatch(self, *args: Any, **kwargs: Any) -> Any:
        async def events() -> AsyncIterator[Any]:
            type(self).dispatched += 1
            yield None

        return events()


async def test_a_typed_run_on_a_runtime_that_runs_elsewhere_is_refused_before_it_starts(
        ) -> None:
    settings = load_settings(thread_store="memory", anthropic_api_key="sk-unused")
    async with _Elsewhere(settings, store=MemoryThreadStore()) as runtime:
        with pytest.raises(ConfigError, match="not supported on a TemporalRuntime"):
            await Billing(runtime).run("Invoice the books")
    assert _Elsewhere.dispatched == 0
