"""Where ``agentrt chat`` reads its lines: a stream (:class:`LineReader`), or a terminal
with line editing and history (:class:`TerminalReader`).

On a terminal, GNU readline (or libedit) edits the line: arrows, Ctrl-A/E, Ctrl-R, and the lines
typed earlier in the session come back with Up. Its ``input()`` blocks, so it runs in
a daemon thread that reads one line each time the REPL asks for one and hands it over
through a pipe the event loop waits on: a pending read never blocks the loop, a
Ctrl-C at the prompt cancels the wait at once, and a read abandoned that way never
holds up the process's exit. The terminal's modes, which readline changes while it
reads, are put back when the REPL ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import stat
import sys
import threading
from typing import Any, TextIO

import anyio

__all__ = ["LineReader", "TerminalReader", "terminal_reader"]


class LineReader:
    """Lines from a text stream without blocking the event loop.

    A pipe or a terminal is read from its descriptor once the loop says it is
    readable; a regular file or an in-memory stream never blocks, so it is read
    directly (epoll refuses regular files anyway), and so is a device epoll refuses
    (``/dev/null``: end of input at once).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._buffer = b""
        self._eof = False
        self._fd: int | None = None
        self._pollable = True
        try:
            fd = stream.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self._fd = fd
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            self._fd = None

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        if self._fd is None:
            text = self.stream.readline()
            return text.rstrip("\r\n") if text else None
        while b"\n" not in self._buffer and not self._eof:
            if self._pollable:
                try:
                    await anyio.wait_readable(self._fd)
                except PermissionError:  # epoll refuses /dev/null; a device read never waits
                    self._pollable = False
            chunk = os.read(self._fd, 65536)
            if chunk:
                self._buffer += chunk
            else:
                self._eof = True
        if not self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")


def terminal_reader(stdin: TextIO, out: TextIO, prompt: str) -> TerminalReader | None:
    """A reader with line editing when ``stdin`` and ``out`` are this process's own
    terminal and readline is available; else None (read the stream as it is)."""
    try:
        own = (stdin is sys.stdin and out is sys.stdout and stdin.isatty() and out.isatty())
    except (AttributeError, ValueError):
        return None
    if not own:
        return None
    try:
        import readline  # noqa: F401  (importing it is what gives input() its editing)
        import termios
    except ImportError:  # no readline on this platform: plain lines
        return None
    return TerminalReader(prompt, stdin.fileno(), termios)


class TerminalReader:
    """``await readline()``: the next line typed (editing, history), or None at Ctrl-D.
    It writes the prompt itself: readline must know it to redraw the line."""

    def __init__(self, prompt: str, fd: int, termios: Any) -> None:
        self._prompt = prompt
        self._fd = fd
        self._termios = termios
        self._modes = termios.tcgetattr(fd)
        read_end, self._write_end = os.pipe()
        self._answers = os.fdopen(read_end, encoding="utf-8")
        self._lines = LineReader(self._answers)
        self._wanted: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def readline(self) -> str | None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="agentrt-chat-input",
                                            daemon=True)
            self._thread.start()
        self._wanted.put(True)
        return await self._lines.readline()

    def _serve(self) -> None:
        while self._wanted.get():
            try:
                line = input(self._prompt)
                os.write(self._write_end, line.replace("\n", " ").encode() + b"\n")
            except (EOFError, OSError, ValueError):  # end of input, or the REPL has ended
                with contextlib.suppress(OSError):
                    os.close(self._write_end)
                return

    def close(self) -> None:
        """Put the terminal's modes back (a read may have been abandoned mid-line) and
        stop taking lines."""
        with contextlib.suppress(OSError, self._termios.error):
            self._termios.tcsetattr(self._fd, self._termios.TCSADRAIN, self._modes)
        self._answers.close()
