"""The ``agentrt`` command line: every command, option and help text, and nothing else.

It imports no other agentrt module (nor anyio, pydantic, the SDK), so ``agentrt --help``,
any ``COMMAND --help`` and ``--version`` answer before the runtime is loaded:
``agentrt.cli`` imports what a command needs once it is parsed.
"""

from __future__ import annotations

import argparse

__all__ = ["parser"]

_TARGET_HELP = "package.module:AgentClass or path/to/file.py:AgentClass"
# agentrt.jit.manifest.DEFAULT_MANIFEST, spelled out here to keep --help light (a test
# compares them)
MANIFEST_HELP = "the manifest file (default: the config's `manifest`, else " \
    "configs/tools.manifest.json)"
_REPLAY_HELP = ("answer from scripted replies on a local fake Messages API: a JSON file "
                '{"replies": [...]}, or a Python file defining REPLIES (an example)')


def parser(version: str) -> argparse.ArgumentParser:
    # --verbose is accepted before and after the command (`agentrt run ... -v`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                        help="log at debug level and show tracebacks")
    top = argparse.ArgumentParser(prog="agentrt", parents=[common],
                                  description="Run and inspect agentrt agents.")
    top.add_argument("--version", action="version", version=f"agentrt {version}")
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", parents=[common], help="run an agent on one task")
    run.add_argument("target", help=_TARGET_HELP)
    run.add_argument("task", help="what to ask the agent")
    thread = run.add_mutually_exclusive_group()
    thread.add_argument("--thread", dest="thread_id", metavar="ID",
                        help="continue this thread (it must exist)")
    thread.add_argument("--new-thread", dest="new_thread", metavar="ID",
                        help="start a thread with this id (it must not exist)")
    _decision_arguments(run, " first (those left undecided are denied)")
    run.add_argument("--json", action="store_true",
                     help="print exactly one JSON object on stdout (with its thread_id)")
    run.add_argument("--replay", metavar="FILE", help=_REPLAY_HELP)

    resume = commands.add_parser("resume", parents=[common],
                                 help="decide a paused thread's pending calls and go on")
    resume.add_argument("target", help=_TARGET_HELP)
    resume.add_argument("thread_id", metavar="THREAD")
    _decision_arguments(resume, "")
    resume.add_argument("--json", action="store_true",
                        help="print exactly one JSON object on stdout (with its thread_id)")
    resume.add_argument("--replay", metavar="FILE", help=_REPLAY_HELP)

    worker = commands.add_parser("worker", parents=[common],
                                 help="run durable runs of agents on Temporal (agentrt[temporal])")
    worker.add_argument("targets", nargs="+", metavar="TARGET", help=_TARGET_HELP)
    worker.add_argument("--temporal", required=True, metavar="ADDRESS",
                        help="the Temporal server, host:port (a dev server: localhost:7233)")
    worker.add_argument("--task-queue", required=True, metavar="NAME",
                        help="the task queue the clients' TemporalRuntime starts runs on")
    worker.add_argument("--namespace", default="default", help="the Temporal namespace")

    chat = commands.add_parser("chat", parents=[common],
                               help="talk to an agent on one thread (a REPL; /help inside)")
    chat.add_argument("target", help=_TARGET_HELP)
    chat.add_argument("--thread", dest="thread_id", metavar="ID", help="resume this thread")
    chat.add_argument("--replay", metavar="FILE", help=_REPLAY_HELP)

    pipeline = commands.add_parser("pipeline", parents=[common],
                                   help="show an agent's tool-call stages in order")
    pipeline.add_argument("target", help=_TARGET_HELP)

    _tools(commands, common)

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
    return top


def _decision_arguments(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--approve", action="append", default=[], metavar="ID",
                        help=f"run this pending call{when} (repeatable)")
    parser.add_argument("--deny", action="append", default=[], metavar="ID:REASON",
                        help=f"refuse this pending call, telling the model why{when} "
                             "(repeatable)")


def _tools(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
           common: argparse.ArgumentParser) -> None:
    """``tools list | show NAME | manifest`` (run by :mod:`agentrt.jit._cli`)."""
    tools = subparsers.add_parser("tools", parents=[common],
                                  help="inspect just-in-time tools, write their manifest")
    commands = tools.add_subparsers(dest="tools_command", required=True)
    listing = commands.add_parser("list", parents=[common],
                                  help="every catalog tool (imports nothing)")
    show = commands.add_parser("show", parents=[common],
                               help="one tool: source, dependencies, functions")
    show.add_argument("name", help="the tool's name")
    manifest = commands.add_parser("manifest", parents=[common],
                                   help="import every tool and write the manifest")
    manifest.add_argument("paths", nargs="*", metavar="IMPORT_PATH",
                          help="more tools, as package.module:Class")
    manifest.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 if the manifest is out of date")
    manifest.add_argument("--fresh", action="store_true",
                          help="drop the tools the current manifest lists unless named again")
    for command in (listing, show, manifest):
        command.add_argument("--agent", metavar="TARGET",
                             help="use this agent's catalog and tool_config "
                                  "(package.module:AgentClass or path/to/file.py:AgentClass)")
        command.add_argument("--config", metavar="FILE", help="a JIT config TOML file")
        command.add_argument("--manifest", metavar="FILE", dest="manifest_file",
                             help=MANIFEST_HELP)
