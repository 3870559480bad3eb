"""Structured outputs in the fake server, through the real SDK: ``output_config.format``
refused as the API refuses it (a 400 in its error shape, its wording), and a scripted
``Reply(output=...)`` sent as the JSON text answer once checked against the schema."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from pydantic import BaseModel

from agentrt.testing import FakeAnthropicServer, Reply, Script
from agentrt.testing._output import schema_problem

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ASK: dict[str, Any] = {"model": "claude-haiku-5-5", "max_tokens": 256,
                       "messages": [{"role": "user", "content": "Your name?"}]}
NAME = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
        "additionalProperties": False}
WHERE = "output_config.format.schema: "


def _format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(("schema", "message"), [
    ({"type": "object", "properties": {"name": {"type": "string"}}},
     WHERE + "For 'object' type, 'additionalProperties' must be explicitly set to false"),
    ({**NAME, "properties": {"name": {"type": "object", "properties": {}}}},
     WHERE + "For 'object' type, 'additionalProperties' must be explicitly set to false"),
    ({**NAME, "properties": {"age": {"type": "integer", "minimum": 0}}},
     WHERE + "For 'integer' type, property 'minimum' is not supported"),
    ({**NAME, "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                      "minItems": 2}}},
     WHERE + "For 'array' type, 'minItems' values other than 0 or 1 are not supported"),
    ({**NAME, "properties": {"name": {"description": "no type"}}},
     WHERE + "Invalid schema: Schema type is missing for schema: {'description': 'no type'}"),
], ids=["no-additional-properties", "nested", "minimum", "min-items", "no-type"])
async def test_a_schema_the_api_refuses_is_a_400(schema: dict[str, Any], message: str) -> None:
    async with FakeAnthropicServer([Reply(output={"name": "Ann"})]) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(**ASK, output_config=_format(schema))
    assert caught.value.status_code == 400
    assert caught.value.body == {"type": "error", "request_id": caught.value.request_id,
                                 "error": {"type": "invalid_request_error",
                                           "message": message}}
    assert server.script.consumed == 0  # refused before the model answers


@pytest.mark.parametrize(("config", "message"), [
    ({"format": {"type": "json", "schema": NAME}},
     "output_config.format.type: Input should be 'json_schema'"),
    ({"format": {"type": "json_schema"}}, WHERE + "Field required"),
    ({"verbosity": "low"}, "output_config.verbosity: Extra inputs are not permitted"),
])
async def test_a_malformed_output_config_is_a_400(config: dict[str, Any], message: str) -> None:
    async with FakeAnthropicServer([Reply(text="hi")]) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError, match=message):
            await client.messages.create(**ASK, output_config=config)


@pytest.mark.parametrize("stream", [True, False])
async def test_an_output_is_the_json_text_answer(stream: bool) -> None:
    class Person(BaseModel):
        name: str
        nickname: str | None = None

    async with FakeAnthropicServer([Reply(output={"name": "Ann"})]) as server, \
            server.client() as client:
        if stream:
            async with client.messages.stream(**ASK, output_format=Person) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.parse(**ASK, output_format=Person)
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"name": "Ann"}
    assert message.parsed_output == Person(name="Ann")  # the SDK's own parse agrees
    assert server.requests[0].body["output_config"]["format"]["type"] == "json_schema"


@pytest.mark.parametrize(("output", "ask", "problem"), [
    ({"name": 7}, _format(NAME), "name: expected string, got int"),
    ({"name": "Ann", "age": 3}, _format(NAME), "age: not a property of the schema"),
    ({}, _format(NAME), "name: required, missing"),
    ({"name": "Ann"}, None, "the request has no output_config.format"),
])
async def test_an_output_the_api_could_not_send_fails_the_step(
        output: Any, ask: dict[str, Any] | None, problem: str) -> None:
    extra = {} if ask is None else {"output_config": ask}
    async with FakeAnthropicServer([Reply(output=output)]) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.InternalServerError, match=problem):
            await client.messages.create(**ASK, **extra)


def test_output_and_text_are_exclusive() -> None:
    with pytest.raises(ValueError, match="set output, or text"):
        Reply(text="{}", output={})


def test_a_replay_file_scripts_an_output() -> None:
    script = Script.from_json({"replies": [{"output": {"name": "Ann"}}]})
    assert script._steps == [Reply(output={"name": "Ann"})]


def test_schema_problem_follows_refs_unions_and_enums() -> None:
    schema = {"$defs": {"Kind": {"enum": ["a", "b"]}},
              "anyOf": [{"type": "object", "additionalProperties": False, "required": ["k"],
                         "properties": {"k": {"$ref": "#/$defs/Kind"}}},
                        {"type": "null"}]}
    assert schema_problem({"k": "a"}, schema) is None
    assert schema_problem(None, schema) is None
    assert schema_problem({"k": "c"}, schema) == "(the answer): matches none of anyOf"
    assert schema_problem({"k": "c"}, schema["anyOf"][0], schema["$defs"]) == (
        "k: 'c' is not one of ['a', 'b']")
