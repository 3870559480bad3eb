"""The pipeline's log events, in one place so every stage reports a hit the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..log import get_logger

if TYPE_CHECKING:
    from ._types import CallContext, ToolCall

__all__ = ["log", "log_hit"]

log = get_logger("agentrt.tool")


def log_hit(ctx: CallContext, stage: str, call: ToolCall, **fields: Any) -> None:
    ctx.log.info("tool.hit", stage=stage, tool=call.spec.tool_name, function=call.name,
                 key=(call.key or "")[:12], **fields)
