"""Token usage, summed over the turns of a run, and the limits a run may be held to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["Limit", "Usage", "UsageLimits", "estimate_tokens"]

Limit: TypeAlias = Literal["input_tokens", "output_tokens", "tool_calls"]


@dataclass(frozen=True, slots=True)
class Usage:
    """``input_tokens`` counts only the uncached part of the prompt, as the API reports it;
    the whole prompt is ``input + cache_creation + cache_read``."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """From the SDK's ``Usage`` object (cache counters may be ``None``). A server-side
        compaction's cost (an ``iterations`` entry of type ``compaction``, which the API
        leaves out of the top-level counts) is added in."""
        found = cls(*(int(_field(usage, name) or 0) for name in _COUNTS))
        for item in _field(usage, "iterations") or ():
            if _field(item, "type") == "compaction":
                found += cls(*(int(_field(item, name) or 0) for name in _COUNTS))
        return found

    def to_json(self) -> dict[str, int]:
        """The four token counts, by the API's names."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
           "cache_read_input_tokens")


def _field(value: Any, name: str) -> Any:
    """An attribute of the SDK's object, or a key of its JSON form."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


# Made once: ``json.dumps`` with options builds a new encoder at every call.
_ESTIMATE_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def estimate_tokens(value: Any) -> int:
    """About how many tokens ``value`` (JSON) costs: a character count over four, the
    usual rule for English and code. Used only to stop a run *before* a request that
    would go past a limit, never for billing."""
    return len(_ESTIMATE_ENCODER.encode(value)) // 4 + 1


@dataclass(frozen=True, slots=True)
class UsageLimits:
    """What one run may use at most (``None``: no bound), checked before each request,
    as pydantic-ai's ``UsageLimits`` are: a run that would go past one ends with
    ``stop_reason="usage_limit"`` and ``RunResult.limit`` naming it, its thread whole.

    ``input_tokens`` counts every prompt token of the run's requests (cached ones
    included: they fill the context window all the same); ``output_tokens`` caps each
    request's ``max_tokens`` to what is left; ``tool_calls`` counts the calls the
    model makes (the ones past the bound are answered as not run).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    tool_calls: int | None = None

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "tool_calls"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value <= 0):
                raise ValueError(f"UsageLimits.{name} must be a positive int or None, "
                                 f"not {value!r}")

    @property
    def bounded(self) -> bool:
        return (self.input_tokens, self.output_tokens, self.tool_calls) != (None, None, None)
