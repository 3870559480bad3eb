"""agentrt's events go through the standard ``logging`` module; the host decides what shows.

Every event is named ``area.what`` (``llm.request``, ``tool.executed``, ``tool.hit``)
and carries key/value fields. It is handed to the stdlib logger ``agentrt.<area>``
(structlog's stdlib integration, with processors of our own so that structlog's
global configuration, which belongs to the application, is never touched): the
record's message reads ``event key=value ...`` for any formatter, and the fields
travel on the record (``record.agentrt_event``, ``record.agentrt_fields``) for
structured ones. Nothing is configured on import, so nothing is printed but what the
host's logging configuration (or, with none, Python's last-resort handler for
warnings) prints. :func:`configure_logging` is the one-call set-up for scripts and
the CLI.

A call whose level the ``agentrt`` logger filters out returns after one cached level
check (well under a microsecond: ``bench/pipeline.py`` prints it), so events on hot
paths (a cache hit) cost nothing in a service that does not want them. A log call
never raises into the run: a failing handler, filter or closed stream is dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, TextIO

import structlog
from structlog.stdlib import BoundLogger

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping

__all__ = ["Logger", "configure_logging", "get_logger"]

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "console", "json"]

_LEVELS: dict[str, int] = {"debug": logging.DEBUG, "info": logging.INFO,
                           "warning": logging.WARNING, "error": logging.ERROR}


class _Message:
    """The record's message, rendered only if a handler formats it."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, fields: Mapping[str, Any]) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        return " ".join([self.event, *(f"{k}={_short(v)}" for k, v in self.fields.items())])


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 2000 else f"{text[:2000]}...[{len(text):,} chars]"


def _to_record(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]
               ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: the event dict as ``logging.Logger.<level>`` arguments."""
    event = str(event_dict.pop("event", ""))
    exc_info = event_dict.pop("exc_info", None)
    fields = dict(event_dict)
    return ((_Message(event, fields),),
            {"exc_info": exc_info, "extra": {"agentrt_event": event, "agentrt_fields": fields}})


class Logger(BoundLogger):
    """A structlog stdlib ``BoundLogger`` that checks the level before doing any work,
    and never lets a logging failure reach its caller."""

    def _log(self, level: int, method: str, event: str, kw: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(level):
            return
        # a handler, filter or stream of the host's that fails is not our run's failure
        with contextlib.suppress(Exception):
            self._proxy_to_logger(method, event, **kw)

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._log(logging.DEBUG, "debug", event or "", kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._log(logging.INFO, "info", event or "", kw)

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._log(logging.WARNING, "warning", event or "", kw)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._log(logging.ERROR, "error", event or "", kw)

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._log(logging.ERROR, "error", event or "", kw)

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> None:
        self._log(logging.CRITICAL, "critical", event or "", kw)

    def enabled(self, level: LogLevel) -> bool:
        """Whether an event at ``level`` would be handled (to skip building costly fields)."""
        return self._logger.isEnabledFor(_LEVELS[level])

    def info_enabled(self) -> bool:
        """``enabled("info")``, for events on hot paths (a cache hit)."""
        return self._logger.isEnabledFor(logging.INFO)


_PROCESSORS: list[Any] = [_to_record]


def get_logger(name: str = "agentrt") -> Logger:
    """The logger of an agentrt area (``agentrt.tool``, ``agentrt.loop``, ...)."""
    return Logger(logging.getLogger(name), processors=_PROCESSORS, context={})


class _Formatter(logging.Formatter):
    """agentrt records as JSON lines, or as console lines for people (structlog's
    renderers), with every field; records of other libraries by their message."""

    def __init__(self, fmt: Literal["console", "json"], colors: bool) -> None:
        super().__init__()
        self._json = fmt == "json"
        self._console = structlog.dev.ConsoleRenderer(colors=colors)

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "agentrt_event", None)
        fields: dict[str, Any] = dict(getattr(record, "agentrt_fields", {}) or {})
        data: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                         + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event if event is not None else record.getMessage(),
            **fields,
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if self._json:
            return json.dumps(data, default=repr, ensure_ascii=False)
        rendered: str = self._console(None, record.levelname.lower(), data)
        return rendered


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that drops a record it cannot write (a closed pipe, ``| head``)
    instead of printing a traceback about it."""

    def handleError(self, record: logging.LogRecord) -> None:
        return None


_installed: list[logging.Handler] = []


def configure_logging(level: LogLevel = "info", fmt: LogFormat = "auto",
                      stream: TextIO | None = None) -> None:
    """Show agentrt's events at ``level`` and above on ``stream`` (stderr by default):
    console lines on a terminal, JSON lines otherwise (``fmt="auto"``).

    For scripts and the CLI. An application with its own logging set-up does not need
    it: the events are on the ``agentrt`` logger. Calling it again replaces the
    handler it installed.
    """
    out = stream or sys.stderr
    tty = out.isatty()
    chosen: Literal["console", "json"] = (
        "json" if fmt == "json" or (fmt == "auto" and not tty) else "console")
    root = logging.getLogger("agentrt")
    for handler in _installed:
        root.removeHandler(handler)
    _installed.clear()
    handler = _Handler(out)
    handler.setFormatter(_Formatter(chosen, colors=tty))
    root.addHandler(handler)
    _installed.append(handler)
    root.setLevel(_LEVELS[level])
    root.propagate = False
