"""Typed answers: an agent's ``output_type`` as the API's structured output, and the
model's final JSON answer validated into it.

The schema goes in every request of the run as ``output_config.format`` (a JSON
schema, ``type: "json_schema"``), the API's constrained decoding of the text answer.
The API takes it together with ``tools`` (its structured-outputs page: "use these
features independently or together in the same request"), so a typed agent keeps its
tools and no final-answer tool is needed: the model calls tools as usual, and its text
answer, the turn with no tool call, is the JSON.

The schema is pydantic's (``TypeAdapter.json_schema``) passed through the SDK's
``transform_schema``, as ``client.messages.parse(output_format=...)`` does: every object
gets ``additionalProperties: false``, and keywords the API does not take (``minimum``,
``maxLength``, ...) move into the description. So the API may send an answer that the
schema allows and pydantic does not (a constraint that became a description, a custom
validator; or JSON cut off at ``max_tokens``): then the model is told what failed, in
a user message stored in the thread, and asked again, at most ``output_retries`` times,
before :class:`~agentrt.OutputValidationError`.

A union of types is one schema with ``anyOf`` at its root (the SDK's own translation of
``A | B``), validated by pydantic's smart union: one request shape for every output
type, and a union costs no extra tool definitions in the cached prefix.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import TYPE_CHECKING, Any, Generic, Union, get_args, get_origin

import pydantic
import pydantic_core
from typing_extensions import TypeVar, is_typeddict

from ._errors import ConfigError, OutputValidationError
from ._events import PartialOutput
from .log import get_logger
from .thread._messages import Message

if TYPE_CHECKING:
    from .llm._model import ModelReply

__all__ = ["OutputCheck", "OutputSpec"]

T = TypeVar("T", default=Any)
log = get_logger("agentrt.output")

# stop reasons whose text is not an answer to validate: the run ends with output None
_NO_ANSWER = frozenset({"refusal", "model_context_window_exceeded"})
_MAX_SHOWN_ERRORS = 10


def _members(output_type: Any) -> tuple[Any, ...]:
    """The types of a union (``A | B``, ``Union[A, B]``), or the type itself."""
    if get_origin(output_type) in (Union, types.UnionType):
        return get_args(output_type)
    return (output_type,)


def _structured(member: Any) -> bool:
    return inspect.isclass(member) and (
        issubclass(member, pydantic.BaseModel) or dataclasses.is_dataclass(member)
        or is_typeddict(member))


def _name(output_type: Any) -> str:
    return " | ".join(getattr(m, "__name__", repr(m)) for m in _members(output_type))


@dataclasses.dataclass(frozen=True, slots=True)
class OutputSpec(Generic[T]):
    """An output type, its validator, and the JSON schema the API is sent."""

    name: str
    adapter: pydantic.TypeAdapter[T]
    schema: dict[str, Any]

    @classmethod
    def of(cls, output_type: Any, *, field: str) -> OutputSpec[Any]:
        """The spec of ``output_type``: a pydantic model, a dataclass, a TypedDict, or a
        union of them. Anything else, or a type with no JSON schema, is a ConfigError
        naming ``field``."""
        members = _members(output_type)
        bad = [m for m in members if not _structured(m)]
        if bad:
            raise ConfigError(f"expected a pydantic model, a dataclass, a TypedDict or a union "
                              f"of them, got {bad[0]!r}", field=field)
        from anthropic import transform_schema  # the SDK is loaded by typed agents only

        try:
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(output_type)
            schema = transform_schema(adapter.json_schema())
        except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError,
                ValueError, TypeError) as exc:
            raise ConfigError(f"{_name(output_type)} has no JSON schema the API can take: "
                              f"{exc}", field=field) from exc
        return cls(_name(output_type), adapter, schema)

    def format(self) -> dict[str, Any]:
        """``output_config.format`` of a request."""
        return {"type": "json_schema", "schema": self.schema}

    def validate(self, text: str) -> T:
        """The answer ``text`` as an instance; ``pydantic.ValidationError`` if it is not one
        (invalid JSON included)."""
        return self.adapter.validate_json(text)


def _problems(error: pydantic.ValidationError) -> list[dict[str, Any]]:
    """The errors as JSON: where (``items.0.qty``, "" for the whole answer), what, which."""
    return [{"loc": ".".join(str(part) for part in e["loc"]), "msg": e["msg"],
             "type": e["type"]} for e in error.errors(include_url=False)]


def _describe(problems: list[dict[str, Any]]) -> str:
    shown = [f"- {p['loc'] or '(the whole answer)'}: {p['msg']}"
             for p in problems[:_MAX_SHOWN_ERRORS]]
    if len(problems) > _MAX_SHOWN_ERRORS:
        shown.append(f"- ... and {len(problems) - _MAX_SHOWN_ERRORS} more")
    return "\n".join(shown)


class OutputCheck(Generic[T]):
    """One typed run: the format its requests carry, its partial outputs while the answer
    streams, and its final answer checked (the model asked again while retries last)."""

    def __init__(self, spec: OutputSpec[T], retries: int) -> None:
        self.spec = spec
        self.retries = retries
        self.attempts = 0
        self.value: T | None = None
        self._buffer = ""
        self._parsed = 0  # the buffer's length at its last parse
        self._last: Any = None

    def apply(self, request: dict[str, Any]) -> None:
        """Add the output format to ``request`` (a Messages API body)."""
        request["output_config"] = {**request.get("output_config", {}),
                                    "format": self.spec.format()}

    def start_turn(self) -> None:
        self._buffer, self._parsed, self._last = "", 0, None

    def partial(self, text: str) -> PartialOutput | None:
        """The answer parsed so far, after one more text delta; None when it did not change
        or is not JSON yet. Not validated: fields may be missing or incomplete.

        Each parse reads the whole answer so far, so one is made only once the answer grew
        by a 32nd since the last: every delta of a short answer, and about 22 parses per
        doubling of a long one, so the cost stays near linear (a 20 KB answer in 4-character
        deltas: about 1 s of parsing at every delta, a few ms this way)."""
        self._buffer += text
        if len(self._buffer) - self._parsed < len(self._buffer) // 32:
            return None
        return self._parse()

    def flush(self) -> PartialOutput | None:
        """At the end of the reply: the answer's last partial output, if a parse was
        skipped since (so the last ``PartialOutput`` is the whole answer)."""
        return self._parse() if self._parsed < len(self._buffer) else None

    def _parse(self) -> PartialOutput | None:
        self._parsed = len(self._buffer)
        try:
            value = pydantic_core.from_json(self._buffer, allow_partial=True)
        except ValueError:
            return None
        if value == self._last or not isinstance(value, dict | list):
            return None
        self._last = value
        return PartialOutput(value)

    def check(self, reply: ModelReply, text: str, thread_id: str) -> Message | None:
        """Validate the final reply's ``text``: None when it is a valid answer (``value``
        holds it) or not an answer (a refusal); else the message telling the model what
        failed, to store and send. Raises OutputValidationError once retries are spent."""
        if reply.stop_reason in _NO_ANSWER:
            return None
        self.attempts += 1
        try:
            self.value = self.spec.validate(text)
            return None
        except pydantic.ValidationError as exc:
            problems = _problems(exc)
        log.warning("run.output_invalid", thread_id=thread_id, output_type=self.spec.name,
                    attempt=self.attempts, retries=self.retries, errors=len(problems),
                    first=problems[0]["msg"] if problems else None)
        if self.attempts > self.retries:
            raise OutputValidationError(self.spec.name, problems, text, attempts=self.attempts,
                                        thread_id=thread_id)
        return Message(role="user", content=(
            f"Your answer is not a valid {self.spec.name}:\n{_describe(problems)}\n"
            "Answer again: the whole JSON answer, corrected."),
            metadata={"output_retry": self.attempts, "output_errors": problems})
