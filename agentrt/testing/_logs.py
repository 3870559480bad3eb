"""Capturing agentrt's log events in tests, as dicts (``event``, ``log_level``, fields)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["capture_events"]


class _Collector(logging.Handler):
    def __init__(self, into: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append({"event": getattr(record, "agentrt_event", record.getMessage()),
                          "log_level": record.levelname.lower(), "logger": record.name,
                          **(getattr(record, "agentrt_fields", None) or {})})


@contextmanager
def capture_events(logger: str = "agentrt") -> Iterator[list[dict[str, Any]]]:
    """Every event of ``logger`` (and below) at any level while the block runs, whatever
    the host's logging set-up: ``with capture_events() as events: ...``."""
    events: list[dict[str, Any]] = []
    target = logging.getLogger(logger)
    handler = _Collector(events)
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield events
    finally:
        target.removeHandler(handler)
        target.setLevel(level)
