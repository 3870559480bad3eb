"""What a thread's requests may hold, and how they are kept under it.

A :class:`ContextPolicy` is per agent (its ``context_policy`` attribute, else built from
the ``context_*`` settings). The token budget of a request defaults to a safe fraction of
the model's context window, read from a table of models (:data:`MODELS`) the user can
extend (:func:`register_model`, or the ``context_windows`` setting). The same table says
which of the API's own context-management edits a model takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = ["BETA_COMPACT", "BETA_CONTEXT_EDITING", "MODELS", "ContextPolicy", "ModelContext",
           "Strategy", "model_context", "register_model"]

Strategy: TypeAlias = Literal["auto", "api_edit", "api_compact", "stub", "summary", "off"]
STRATEGIES: tuple[str, ...] = ("auto", "api_edit", "api_compact", "stub", "summary", "off")

BETA_CONTEXT_EDITING = "context-management-2025-06-27"  # clear_tool_uses_20250919
BETA_COMPACT = "compact-2026-01-12"  # compact_20260112


@dataclass(frozen=True, slots=True)
class ModelContext:
    """A model's context window (input and output together, in tokens) and the
    context-management edits the API applies for it: ``clear_tool_uses_20250919``
    (``edits``) and ``compact_20260112`` (``compaction``)."""

    window: int
    edits: bool = False
    compaction: bool = False

    def __post_init__(self) -> None:
        if type(self.window) is not int or self.window < 1024:
            raise ValueError(f"ModelContext.window must be an int >= 1024 (tokens), "
                             f"not {self.window!r}")


# The API's model pages (late 2026). Looked up by exact name, then by the longest
# prefix ("claude-haiku-4-5-20251001" is "claude-haiku-4-5"); unknown models get
# _UNKNOWN: the smallest current window and client-side strategies only.
MODELS: dict[str, ModelContext] = {
    "claude-haiku-5-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-sonnet-5-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-opus-5-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-fable-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-opus-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-sonnet-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-mythos-5": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-opus-4-8": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-opus-4-7": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-opus-4-6": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-sonnet-4-6": ModelContext(1_000_000, edits=True, compaction=True),
    "claude-sonnet-4-5": ModelContext(200_000, edits=True),
    "claude-opus-4-5": ModelContext(200_000, edits=True),
    "claude-haiku-4-5": ModelContext(200_000, edits=True),
    "claude-opus-4-1": ModelContext(200_000, edits=True),
    "claude-opus-4": ModelContext(200_000, edits=True),
    "claude-sonnet-4": ModelContext(200_000, edits=True),
}
_UNKNOWN = ModelContext(200_000)


def register_model(name: str, window: int, *, edits: bool = False,
                   compaction: bool = False) -> None:
    """Add a model (or a prefix of model names) to the table, or change one."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_model: name must be a non-empty model name")
    MODELS[name] = ModelContext(window, edits=edits, compaction=compaction)


def model_context(model: str, windows: dict[str, int] | None = None) -> ModelContext:
    """What the table (with ``windows`` overriding its windows) says of ``model``."""
    found = MODELS.get(model)
    if found is None:
        prefixes = [name for name in MODELS if model.startswith(name)]
        found = MODELS[max(prefixes, key=len)] if prefixes else _UNKNOWN
    for name in sorted(windows or {}, key=len, reverse=True):
        if model == name or model.startswith(name):
            return ModelContext((windows or {})[name], edits=found.edits,
                                compaction=found.compaction)
    return found


@dataclass(frozen=True, slots=True)
class ContextPolicy:
    """How a thread's requests are kept under a token budget.

    ``strategy``: ``auto`` uses the API's own editing (``api_edit``: old tool results
    cleared by the API, ``clear_tool_uses_20250919``) where the model takes it, else
    client-side stubs (``stub``), and then a summary written by the model (``summary``);
    ``api_compact`` asks the API to compact (``compact_20260112``); ``off`` sends whole
    threads. Whatever is chosen, a client-side summary is the last resort: a thread
    already over the budget is always brought back under it.

    ``budget``: tokens one request may hold (None: ``budget_fraction`` of the model's
    window, less ``max_tokens``). An edit runs once a request passes ``trigger_fraction``
    of the budget, at most once per ``edit_every`` requests (so the cached prefix is
    not rebuilt every turn), unless the budget itself would be passed; it removes at
    the oldest end down to ``target_fraction`` of the budget. The ``keep_tool_results``
    newest tool results are never cleared, the ``keep_messages`` newest messages never
    summarized.
    """

    strategy: Strategy = "auto"
    budget: int | None = None
    budget_fraction: float = 0.75
    trigger_fraction: float = 0.8
    target_fraction: float = 0.5
    edit_every: int = 8
    keep_tool_results: int = 3
    keep_messages: int = 4
    summary_max_tokens: int = 1024
    summary_model: str | None = None
    windows: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"ContextPolicy.strategy must be one of {', '.join(STRATEGIES)}, "
                             f"not {self.strategy!r}")
        if self.budget is not None and (type(self.budget) is not int or self.budget < 1024):
            raise ValueError(f"ContextPolicy.budget must be None or an int >= 1024 (tokens), "
                             f"not {self.budget!r}")
        for name in ("budget_fraction", "trigger_fraction", "target_fraction"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value <= 1:
                raise ValueError(f"ContextPolicy.{name} must be a number in (0, 1], "
                                 f"not {value!r}")
        if self.target_fraction >= self.trigger_fraction:
            raise ValueError("ContextPolicy.target_fraction must be below trigger_fraction "
                             f"({self.target_fraction} >= {self.trigger_fraction})")
        for name in ("edit_every", "keep_tool_results", "keep_messages", "summary_max_tokens"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"ContextPolicy.{name} must be a positive int, not {value!r}")
        for model, window in self.windows.items():
            if type(window) is not int or window < 1024:
                raise ValueError(f"ContextPolicy.windows[{model!r}] must be an int >= 1024, "
                                 f"not {window!r}")

    def budget_for(self, model: str, max_tokens: int) -> int:
        """The request budget for ``model`` answering in at most ``max_tokens``."""
        if self.budget is not None:
            return self.budget
        window = model_context(model, self.windows).window
        return max(1024, min(int(window * self.budget_fraction), window - max_tokens))

    def chain(self, model: str) -> tuple[str, ...]:
        """The strategies tried in order for ``model``; a summary always last."""
        if self.strategy == "off":
            return ()
        caps = model_context(model, self.windows)
        if self.strategy == "auto":
            first = "api_edit" if caps.edits else "stub"
            return (first, "api_compact", "summary") if caps.compaction else (first, "summary")
        return (self.strategy,) if self.strategy == "summary" else (self.strategy, "summary")
