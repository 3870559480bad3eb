"""The ``agentrt`` command. ``main(argv)`` returns the exit code so tests call it directly.

Commands: ``run`` (one task), ``resume`` (a run paused for approval), ``chat`` (a REPL
on one thread, :mod:`._chat`),
``pipeline`` (an agent's stages), ``tools`` (the JIT catalog, :mod:`.jit._cli`),
``config show`` and ``threads list | show`` (:mod:`._inspect`). Every failure is
one line on stderr and a non-zero exit (2: the command or the set-up is wrong,
1: the run failed); ``--verbose`` adds debug logs and the traceback.

The arguments are parsed (:mod:`._cli_args`) before anything else is imported, so
``--help`` and ``--version`` answer at once; a command imports the runtime when it runs.
Logging follows the settings ``log_level`` and ``log_format`` (``--verbose``: debug).
A run that stops waiting for a person's approval (``run`` or ``resume``) prints the pending
calls (in the JSON's ``pending`` with ``--json``) and exits with 3 (:data:`EXIT_APPROVAL`):
``agentrt resume THREAD --approve ID --deny ID:reason`` continues it.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING, TextIO

from . import __version__
from ._cli_args import parser

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from contextlib import AsyncExitStack

    import anthropic

    from ._result import RunResult
    from .runtime import Runtime
    from .settings import Settings

__all__ = ["main"]

EXIT_APPROVAL = 3
"""The exit code of ``run``/``resume`` when the run waits for approval."""

_NO_KEY = ("no API key: set ANTHROPIC_API_KEY, or run offline on the fake server with "
           "--replay FILE")


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with logging set up as they say (``--verbose``: debug)."""
    from .log import configure_logging
    from .settings import load_settings

    settings = load_settings()
    level = "debug" if getattr(args, "verbose", False) else settings.log_level
    configure_logging(level=level, fmt=settings.log_format, stream=sys.stderr)
    return settings


def _show_pipeline(args: argparse.Namespace, out: TextIO) -> int:
    from ._target import load_agent_class
    from .pipeline import configured_stages, describe_pipeline, stage_names

    settings = _settings(args)
    agent_cls = load_agent_class(args.target)
    configured = (agent_cls.pipeline if agent_cls.pipeline is not None
                  else configured_stages(settings))
    names = [n if isinstance(n, str) else str(getattr(n, "name", None) or getattr(
        n, "__name__", repr(n))) for n in configured]
    known = [n for n in names if n in stage_names()]
    described = dict(describe_pipeline(known))
    rows = [*names, "execute"]
    for index, name in enumerate(rows, start=1):
        out.write(f"{index}. {name:<14} {described.get(name, '(custom stage)')}\n")
    return 0


async def _open_runtime(stack: AsyncExitStack, settings: Settings,
                        replay: str | None) -> Runtime:
    """The runtime, its model client answering from ``replay`` on a fake server if given.

    Without a replay, whether an API key is configured (environment, .env, config file)
    is Runtime's start-up check; the CLI only adds the hint about ``--replay``.
    """
    from ._errors import ConfigError, UsageError
    from .runtime import Runtime

    client: anthropic.AsyncAnthropic | None = None
    if replay:
        from .testing import FakeAnthropicServer, Script

        try:
            script = Script.load(replay)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--replay {replay}: {exc}") from exc
        server = await stack.enter_async_context(FakeAnthropicServer(script))
        client = await stack.enter_async_context(server.client())
    try:
        runtime = Runtime(settings, client=client)
    except ConfigError as exc:
        if exc.field != "AGENTRT_ANTHROPIC_API_KEY":
            raise
        raise UsageError(_NO_KEY) from exc
    return await stack.enter_async_context(runtime)


async def _thread_for_run(runtime: Runtime, args: argparse.Namespace) -> tuple[str, str]:
    """The thread id ``run`` uses and what it is (new or continued). An id given with
    ``--thread`` must exist (a typo must not start a thread silently), one given with
    ``--new-thread`` must not."""
    from ._errors import UsageError
    from .thread import new_thread_id

    if args.thread_id is not None:
        if await runtime.store.get_thread(args.thread_id) is None:
            raise UsageError(f"thread {args.thread_id!r} does not exist in this store "
                             f"(--new-thread {args.thread_id} starts a thread with that id)")
        return args.thread_id, "continued"
    if args.new_thread is not None:
        if await runtime.store.get_thread(args.new_thread) is not None:
            raise UsageError(f"thread {args.new_thread!r} already exists (--thread "
                             f"{args.new_thread} continues it)")
        return args.new_thread, "new"
    return new_thread_id(), "new"


def _decisions(args: argparse.Namespace) -> dict[str, str]:
    from ._errors import UsageError

    deny: dict[str, str] = {}
    for item in args.deny:
        call_id, _, reason = item.partition(":")
        if not call_id:
            raise UsageError(f"--deny {item!r}: expected ID or ID:reason")
        deny[call_id] = reason or "denied from the agentrt command line"
    return deny


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    import json
    from contextlib import AsyncExitStack

    from ._events import RunFinished
    from ._render import RunView, animated, summary
    from ._target import load_agent_class

    settings = _settings(args)
    agent_cls = load_agent_class(args.target)
    async with AsyncExitStack() as stack:
        runtime = await _open_runtime(stack, settings, args.replay)
        agent = agent_cls(runtime)
        if args.command == "resume":  # the thread must exist: resume_stream says so
            thread_id, state = args.thread_id, "resumed"
        else:
            thread_id, state = await _thread_for_run(runtime, args)
        said = f"agentrt: thread {thread_id} ({state}; --thread {thread_id} continues it)\n"
        if not args.json:  # so that an interrupted run can be resumed
            sys.stderr.write(said)
            sys.stderr.flush()
        result: RunResult | None = None
        view = RunView(out, tty=False if args.json else None)
        if args.command == "resume":
            events = agent.resume_stream(thread_id, approve=args.approve,
                                         deny=_decisions(args))
        else:
            events = agent.stream(args.task, thread_id=thread_id, approve=args.approve,
                                  deny=_decisions(args))
        try:
            async with animated(view):
                async for event in events:
                    if isinstance(event, RunFinished):
                        result = event.result
                    if not args.json:
                        view.show(event)
        finally:
            if args.json and result is None:  # no object will carry the thread id
                sys.stderr.write(said)
        assert result is not None
        if args.json:
            out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        else:
            view.line(summary(result))
            if result.pending:
                flags = " ".join(f"--approve {p.id}" for p in result.pending)
                view.line(f"waiting for approval: agentrt resume {args.target} "
                          f"{result.thread_id} {flags} (or --deny ID:reason)")
    return EXIT_APPROVAL if result.pending else 0


async def _chat(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    from contextlib import AsyncExitStack

    from ._chat import Chat
    from ._errors import ThreadNotFoundError
    from ._target import load_agent_class

    settings = _settings(args)
    agent_cls = load_agent_class(args.target)
    async with AsyncExitStack() as stack:
        runtime = await _open_runtime(stack, settings, args.replay)
        agent = agent_cls(runtime)
        if args.thread_id is not None:
            info = await runtime.store.get_thread(args.thread_id)
            if info is None:
                raise ThreadNotFoundError(args.thread_id)
            state = f"resumed, {info.message_count} messages"
        else:
            info = await runtime.store.create_thread()
            state = "new"
        out.write(f"agentrt chat · {agent.name} · thread {info.id} ({state}) · /help for "
                  "commands, Ctrl-C cancels a turn, /exit leaves\n")
        out.flush()
        return await Chat(agent, info.id, stdin=stdin, out=out, err=sys.stderr).run()


async def _worker(args: argparse.Namespace) -> int:
    from ._errors import UsageError

    settings = _settings(args)
    try:
        from .temporal._worker import worker_command
    except ImportError as exc:
        raise UsageError(f"agentrt worker needs the temporal extra: pip install "
                         f"'agentrt[temporal]' ({exc})") from exc
    return await worker_command(args, settings)


def _dispatch(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    import anyio

    if args.command == "pipeline":
        return _show_pipeline(args, out)
    if args.command == "tools":
        from .jit._cli import run_tools_command

        _settings(args)  # for logging
        return run_tools_command(args, stdout=out)
    if args.command == "config":
        from ._inspect import config_show

        return config_show(args, out, _settings(args))
    if args.command == "threads":
        from ._inspect import threads_command

        return anyio.run(threads_command, args, out, _settings(args))
    if args.command == "chat":
        return anyio.run(_chat, args, stdin, out)
    if args.command == "worker":
        return anyio.run(_worker, args)
    return anyio.run(_run, args, out)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    args = parser(__version__).parse_args(argv)
    out = stdout or sys.stdout
    verbose = getattr(args, "verbose", False)
    from ._errors import AgentRtError, UsageError
    from .log import configure_logging

    # until the settings are read (a command reads them first thing): their defaults
    configure_logging(level="debug" if verbose else "warning", fmt="auto", stream=sys.stderr)
    try:
        return _dispatch(args, stdin or sys.stdin, out)
    except KeyboardInterrupt:
        sys.stderr.write("agentrt: interrupted\n")
        return 130
    except BrokenPipeError:  # `agentrt run ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        error = _sole(exc)
        known = isinstance(error, UsageError | AgentRtError)
        message = str(error) if known else f"internal error: {type(error).__name__}: {error}"
        hint = "" if known or verbose else " (--verbose shows the traceback)"
        sys.stderr.write(f"agentrt: {' '.join(message.split())}{hint}\n")
        return 2 if isinstance(error, UsageError) else 1


def _sole(exc: Exception) -> Exception:
    """The one error inside nested single-member exception groups (task groups wrap)."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
