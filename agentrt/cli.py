"""The ``agentrt`` command. ``main(argv)`` returns the exit code so tests call it directly."""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Literal, TextIO

import anyio

from ._errors import AgentRtError, UsageError
from ._events import RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from ._target import load_agent_class
from .jit._cli import add_tools_commands, run_tools_command
from .log import configure_logging
from .pipeline import describe_pipeline, stage_names
from .runtime import Runtime
from .settings import effective_pipeline, load_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._result import RunResult

__all__ = ["main"]

_NO_KEY_HINT = ("agentrt: no API key: set ANTHROPIC_API_KEY, or run offline on the fake "
                "server with --replay FILE")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentrt", description="Run agentrt agents.")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="log at debug level and show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an agent on one task")
    run.add_argument("target", help="package.module:AgentClass or path/to/file.py:AgentClass")
    run.add_argument("task", help="what to ask the agent")
    run.add_argument("--thread", dest="thread_id", help="continue this thread")
    run.add_argument("--json", action="store_true",
                     help="print exactly one JSON object on stdout (logs go to stderr)")
    run.add_argument("--replay", metavar="FILE",
                     help="answer from this scripted reply file on a local fake Messages API")
    pipeline = commands.add_parser("pipeline", help="show an agent's tool-call stages in order")
    pipeline.add_argument("target", help="package.module:AgentClass or path/to/file.py:AgentClass")
    add_tools_commands(commands)
    return parser


def _show_pipeline(args: argparse.Namespace, out: TextIO) -> int:
    agent_cls = load_agent_class(args.target)
    configured = (agent_cls.pipeline if agent_cls.pipeline is not None
                  else effective_pipeline(load_settings()))
    names = [n if isinstance(n, str) else getattr(n, "__name__", repr(n)) for n in configured]
    known = [n for n in names if n in stage_names()]
    described = dict(describe_pipeline(known))
    rows = [*names, "execute"]
    for index, name in enumerate(rows, start=1):
        out.write(f"{index}. {name:<14} {described.get(name, '(custom stage)')}\n")
    return 0


def _has_api_key() -> bool:
    return any(os.environ.get(name) for name in
               ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"))


def _summary(result: RunResult) -> str:
    stats, usage = result.stats, result.usage
    answered = ", ".join(f"{k} {v}" for k, v in sorted(stats.hits.items()))
    return (f"[{result.stop_reason} · {result.iterations} turns · tool calls {stats.tool_calls}, "
            f"executed {stats.executed}, errors {stats.errors} ({answered or 'none'}) · tokens "
            f"in {usage.input_tokens}, out {usage.output_tokens}, cache read "
            f"{usage.cache_read_input_tokens}, cache write {usage.cache_creation_input_tokens} · "
            f"thread {result.thread_id}]")


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    agent_cls = load_agent_class(args.target)
    settings = load_settings()
    async with AsyncExitStack() as stack:
        client = None
        if args.replay:
            from .testing import FakeAnthropicServer, Script

            try:
                script = Script.load(args.replay)
            except (OSError, ValueError) as exc:
                raise UsageError(f"--replay {args.replay}: {exc}") from exc
            server = await stack.enter_async_context(FakeAnthropicServer(script))
            client = await stack.enter_async_context(server.client())
        elif not _has_api_key():
            out.flush()
            sys.stderr.write(_NO_KEY_HINT + "\n")
            return 2
        runtime = await stack.enter_async_context(Runtime(settings, client=client))
        agent = agent_cls(runtime)
        result: RunResult | None = None
        at_line_start = True
        async for event in agent.stream(args.task, thread_id=args.thread_id):
            if isinstance(event, RunFinished):
                result = event.result
                continue
            if args.json:
                continue
            line = ""
            if isinstance(event, TextDelta):
                out.write(event.text)
                out.flush()
                at_line_start = event.text.endswith("\n")
                continue
            if isinstance(event, ToolCallStarted):
                arguments = ", ".join(f"{k}={v!r}" for k, v in event.input.items())
                line = f"  -> {event.name}({arguments})"
            elif isinstance(event, ToolCallFinished):
                mark = "error" if event.is_error else event.source
                detail = f": {event.content[:120]}" if event.is_error else ""
                line = f"  <- {event.name} [{mark}, {event.duration * 1000:.0f} ms]{detail}"
            else:
                continue
            out.write(("" if at_line_start else "\n") + line + "\n")
            at_line_start = True
        assert result is not None
        if args.json:
            out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        else:
            out.write(("" if at_line_start else "\n") + _summary(result) + "\n")
    return 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    level: Literal["debug", "info", "warning"] = (
        "debug" if args.verbose else ("info" if getattr(args, "json", False) else "warning"))
    configure_logging(level=level, fmt="auto", stream=sys.stderr)
    try:
        if args.command == "pipeline":
            return _show_pipeline(args, out)
        if args.command == "tools":
            return run_tools_command(args, stdout=out)
        return anyio.run(_run, args, out)
    except KeyboardInterrupt:
        sys.stderr.write("agentrt: interrupted\n")
        return 130
    except BrokenPipeError:  # `agentrt run ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (UsageError, AgentRtError) as exc:
        if args.verbose:
            raise
        sys.stderr.write(f"agentrt: {exc}\n")
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
