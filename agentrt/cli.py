"""The ``agentrt`` command. ``main(argv)`` returns the exit code so tests call it directly.

Commands: ``run`` (one task), ``chat`` (a REPL on one thread, :mod:`._chat`),
``pipeline`` (an agent's stages), ``tools`` (the JIT catalog, :mod:`.jit._cli`),
``config show`` and ``threads list | show`` (:mod:`._inspect`). Every failure is
one line on stderr and a non-zero exit (2: the command or the set-up is wrong,
1: the run failed); ``--verbose`` adds debug logs and the traceback. A run that stops
waiting for a person's approval (``run`` or ``resume``) prints the pending calls (in
the JSON's ``pending`` with ``--json``) and exits with 3 (:data:`EXIT_APPROVAL`):
``agentrt resume THREAD --approve ID --deny ID:reason`` continues it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Literal, TextIO

import anyio

from ._errors import AgentRtError, ConfigError, ThreadNotFoundError, UsageError
from ._events import RunFinished
from ._render import RunView, animated, summary
from ._target import load_agent_class
from .jit._cli import add_tools_commands, run_tools_command
from .log import configure_logging
from .pipeline import configured_stages, describe_pipeline, stage_names
from .runtime import Runtime
from .settings import load_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anthropic

    from ._result import RunResult
    from .settings import Settings

__all__ = ["main"]

EXIT_APPROVAL = 3
"""The exit code of ``run``/``resume`` when the run waits for approval."""

_NO_KEY = ("no API key: set ANTHROPIC_API_KEY, or run offline on the fake server with "
           "--replay FILE")
_TARGET_HELP = "package.module:AgentClass or path/to/file.py:AgentClass"


def _parser() -> argparse.ArgumentParser:
    # --verbose is accepted before and after the command (`agentrt run ... -v`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                        help="log at debug level and show tracebacks")
    parser = argparse.ArgumentParser(prog="agentrt", parents=[common],
                                     description="Run and inspect agentrt agents.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", parents=[common], help="run an agent on one task")
    run.add_argument("target", help=_TARGET_HELP)
    run.add_argument("task", help="what to ask the agent")
    run.add_argument("--thread", dest="thread_id", help="continue this thread")
    _decision_arguments(run, " first (those left undecided are denied)")
    run.add_argument("--json", action="store_true",
                     help="print exactly one JSON object on stdout (logs go to stderr)")
    run.add_argument("--replay", metavar="FILE",
                     help="answer from this scripted reply file on a local fake Messages API")

    resume = commands.add_parser("resume", parents=[common],
                                 help="decide a paused thread's pending calls and go on")
    resume.add_argument("target", help=_TARGET_HELP)
    resume.add_argument("thread_id", metavar="THREAD")
    _decision_arguments(resume, "")
    resume.add_argument("--json", action="store_true",
                        help="print exactly one JSON object on stdout (logs go to stderr)")
    resume.add_argument("--replay", metavar="FILE",
                        help="answer from this scripted reply file on a local fake Messages API")

    chat = commands.add_parser("chat", parents=[common],
                               help="talk to an agent on one thread (a REPL; /help inside)")
    chat.add_argument("target", help=_TARGET_HELP)
    chat.add_argument("--thread", dest="thread_id", help="resume this thread")
    chat.add_argument("--replay", metavar="FILE",
                      help="answer from this scripted reply file on a local fake Messages API")

    pipeline = commands.add_parser("pipeline", parents=[common],
                                   help="show an agent's tool-call stages in order")
    pipeline.add_argument("target", help=_TARGET_HELP)

    add_tools_commands(commands)

    config = commands.add_parser("config", parents=[common], help="the settings in effect")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", parents=[common],
                                      help="every setting, its value and origin (secrets masked)")
    show.add_argument("--json", action="store_true", help="one JSON object")

    threads = commands.add_parser("threads", parents=[common],
                                  help="the threads in the configured store")
    thread_commands = threads.add_subparsers(dest="threads_command", required=True)
    listing = thread_commands.add_parser("list", parents=[common],
                                         help="threads, most recently updated first")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (20)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    one = thread_commands.add_parser("show", parents=[common], help="one thread's messages")
    one.add_argument("thread_id", metavar="ID")
    one.add_argument("--json", action="store_true", help="one JSON object")
    return parser


def _decision_arguments(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--approve", action="append", default=[], metavar="ID",
                        help=f"run this pending call{when} (repeatable)")
    parser.add_argument("--deny", action="append", default=[], metavar="ID:REASON",
                        help=f"refuse this pending call, telling the model why{when} "
                             "(repeatable)")


def _show_pipeline(args: argparse.Namespace, out: TextIO) -> int:
    agent_cls = load_agent_class(args.target)
    configured = (agent_cls.pipeline if agent_cls.pipeline is not None
                  else configured_stages(load_settings()))
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


def _decisions(args: argparse.Namespace) -> dict[str, str]:
    deny: dict[str, str] = {}
    for item in args.deny:
        call_id, _, reason = item.partition(":")
        if not call_id:
            raise UsageError(f"--deny {item!r}: expected ID or ID:reason")
        deny[call_id] = reason or "denied from the agentrt command line"
    return deny


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    agent_cls = load_agent_class(args.target)
    settings = load_settings()
    async with AsyncExitStack() as stack:
        runtime = await _open_runtime(stack, settings, args.replay)
        agent = agent_cls(runtime)
        result: RunResult | None = None
        view = RunView(out, tty=False if args.json else None)
        if args.command == "resume":
            events = agent.resume_stream(args.thread_id, approve=args.approve,
                                         deny=_decisions(args))
        else:
            events = agent.stream(args.task, thread_id=args.thread_id, approve=args.approve,
                                  deny=_decisions(args))
        async with animated(view):
            async for event in events:
                if isinstance(event, RunFinished):
                    result = event.result
                if not args.json:
                    view.show(event)
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
    from ._chat import Chat

    agent_cls = load_agent_class(args.target)
    settings = load_settings()
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


def _dispatch(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    if args.command == "pipeline":
        return _show_pipeline(args, out)
    if args.command == "tools":
        return run_tools_command(args, stdout=out)
    if args.command == "config":
        from ._inspect import config_show

        return config_show(args, out)
    if args.command == "threads":
        from ._inspect import threads_command

        return anyio.run(threads_command, args, out)
    if args.command == "chat":
        return anyio.run(_chat, args, stdin, out)
    return anyio.run(_run, args, out)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    verbose = getattr(args, "verbose", False)
    # `run --json` keeps stdout for its one object: the run's info logs go to stderr
    level: Literal["debug", "info", "warning"] = (
        "debug" if verbose else
        "info" if args.command in ("run", "resume") and args.json else "warning")
    configure_logging(level=level, fmt="auto", stream=sys.stderr)
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
