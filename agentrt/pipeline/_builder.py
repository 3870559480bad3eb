"""Folds a declarative list of stages around the terminal handler."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from ._types import ToolHandler

__all__ = ["StageFactory", "build_pipeline"]

StageFactory: TypeAlias = Callable[[ToolHandler], ToolHandler]


def build_pipeline(stages: Sequence[StageFactory], terminal: ToolHandler) -> ToolHandler:
    """``stages[0]`` sees a call first; the terminal handler (execute) sees it last."""
    handler = terminal
    for make in reversed(stages):
        handler = make(handler)
    return handler
