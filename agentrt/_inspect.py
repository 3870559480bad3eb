"""``agentrt config show`` and ``agentrt threads list | show ID``: look without running.

``config show`` prints the settings a run would use, after every source (arguments,
``AGENTRT_*`` environment, ``.env``, the TOML file) has had its say, with each
value's origin, and secrets masked: a support ticket can carry its output as is.
The threads commands open the thread store the settings name (SQLite, Redis or
memory) and nothing else: no model client, no API key needed.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import SecretStr

from ._approvals import pending_calls
from ._errors import ThreadNotFoundError
from ._redis import mask_url
from ._render import call_label, pending_lines
from .pipeline import configured_stages
from .runtime import _redis_from, _store_from
from .settings import Settings, config_file, effective_thread_store

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence

    from .thread._messages import Message, ThreadEvent
    from .thread._store import ThreadStore

__all__ = ["config_show", "render_messages", "threads_command"]

_SECRET = "***"


def _origins(file: Path | None) -> dict[str, str]:
    """Where each set value came from, in the order pydantic-settings applies them."""
    origins: dict[str, str] = {}
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            data = {}  # load_settings has already accepted the file; this is only a label
        origins.update(dict.fromkeys(data, str(file)))
    if Path(".env").is_file():
        from dotenv import dotenv_values

        for key in dotenv_values(".env"):
            if key.upper().startswith("AGENTRT_"):
                origins[key[8:].lower()] = ".env"
    for key in os.environ:
        if key.startswith("AGENTRT_") and key != "AGENTRT_CONFIG_FILE":
            origins[key[8:].lower()] = f"env {key}"
    return origins


def _shown(name: str, value: Any) -> Any:
    """A JSON-able value, secrets masked (a Redis URL keeps all but its password)."""
    if isinstance(value, SecretStr):
        return mask_url(value.get_secret_value()) if name == "redis_url" else _SECRET
    if name == "anthropic_base_url" and isinstance(value, str):
        return mask_url(value)  # a proxy's ``user:password@`` is a secret too
    if isinstance(value, Path):
        return str(value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def config_show(args: argparse.Namespace, out: TextIO, settings: Settings) -> int:
    file = config_file()
    origins = _origins(file)
    values = {name: _shown(name, getattr(settings, name)) for name in Settings.model_fields}
    derived = {"pipeline": configured_stages(settings),
               "thread_store": effective_thread_store(settings)}
    if args.json:
        out.write(json.dumps({"settings": values, "effective": derived,
                              "config_file": str(file) if file else None,
                              "origins": {k: v for k, v in origins.items() if k in values}},
                             ensure_ascii=False) + "\n")
        return 0
    out.write("# agentrt settings in effect (AGENTRT_* env > .env > config file > defaults)\n"
              f"# config file: {file or 'none (configs/agentrt.toml does not exist)'}\n")
    for name, value in values.items():
        origin = origins.get(name, "default")
        line = f"# {name} = (unset)" if value is None else f"{name} = {_toml_value(value)}"
        out.write(f"{line:<60} # {origin}\n")
    out.write("# in effect, from the above:\n")
    for name, value in derived.items():
        out.write(f"#   {name}: {_toml_value(value)}\n")
    return 0


# threads -------------------------------------------------------------------------------


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content
                        if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def render_messages(messages: Iterable[Message]) -> list[str]:
    """A thread as people read it: one line per text, tool call and tool result."""
    lines = []
    for index, message in enumerate(messages, start=1):
        blocks = message.blocks()
        calls = [b for b in blocks if b.get("type") == "tool_use"]
        results = [b for b in blocks if b.get("type") == "tool_result"]
        text = _text(blocks)
        kind = message.role + (" (tool results)" if results and not text else "")
        lines.append(f"[{index}] {kind}: {_clip(text, 200)}\n" if text else f"[{index}] {kind}\n")
        for call in calls:
            lines.append(f"      -> {call_label(str(call.get('name')), call.get('input') or {})}\n")
        for result in results:
            mark = "error: " if result.get("is_error") else ""
            lines.append(f"      <- {mark}{_clip(_text(result.get('content')), 160)}\n")
    return lines


def context_lines(events: Iterable[ThreadEvent], messages: Sequence[Message]) -> list[str]:
    """One line per context event (agentrt.context): what was cleared, summarized,
    compacted, naming messages by their number in ``render_messages``."""
    number = {m.id: index for index, m in enumerate(messages, start=1)}
    lines = []
    for event in events:
        data = event.data
        if event.kind == "context.cleared":
            what = (f"cleared {len(data.get('tool_use_ids') or ())} tool results "
                    f"({data.get('strategy')})")
        elif event.kind == "context.summary":
            what = (f"summarized {data.get('messages')} messages through "
                    f"[{number.get(str(data.get('through')), '?')}]: "
                    f"{_clip(str(data.get('summary', '')), 100)}")
        elif event.kind == "context.compacted":
            what = f"compacted by the API at [{number.get(str(data.get('message_id')), '?')}]"
        else:
            what = event.kind
        lines.append(f"  {_when(event.created_at)}  {what}\n")
    return lines


async def threads_command(args: argparse.Namespace, out: TextIO, settings: Settings) -> int:
    kind = effective_thread_store(settings)
    if kind == "sqlite" and not settings.sqlite_path.exists():
        # Listing must not create an empty database as a side effect.
        if args.threads_command == "show":
            raise ThreadNotFoundError(args.thread_id)
        out.write(f"no threads: {settings.sqlite_path} does not exist yet\n")
        return 0
    if kind == "memory" and args.threads_command == "list":
        out.write("no threads: the memory store keeps threads only inside a running process\n")
        return 0
    async with AsyncExitStack() as stack:
        redis = _redis_from(settings)
        if redis is not None:
            stack.push_async_callback(redis.aclose)
        store: ThreadStore = _store_from(settings, redis)
        stack.push_async_callback(store.aclose)
        if args.threads_command == "list":
            return await _list(store, args, out)
        return await _show(store, args, out)


async def _list(store: ThreadStore, args: argparse.Namespace, out: TextIO) -> int:
    threads = await store.list_threads(limit=args.limit)
    if args.json:
        out.write(json.dumps([{"id": t.id, "created_at": t.created_at,
                               "updated_at": t.updated_at, "messages": t.message_count,
                               "metadata": t.metadata} for t in threads]) + "\n")
        return 0
    if not threads:
        out.write("no threads\n")
        return 0
    out.write(f"{'THREAD':<37} {'MESSAGES':>8}  {'UPDATED':<19}  FIRST MESSAGE\n")
    for info in threads:
        messages = await store.messages(info.id)
        first = next((_text(m.content) for m in messages if m.role == "user"), "")
        out.write(f"{info.id:<37} {info.message_count:>8}  {_when(info.updated_at):<19}  "
                  f"{_clip(first, 60)}\n")
    return 0


async def _show(store: ThreadStore, args: argparse.Namespace, out: TextIO) -> int:
    info = await store.get_thread(args.thread_id)
    if info is None:
        raise ThreadNotFoundError(args.thread_id)
    messages = await store.messages(args.thread_id)
    # an operator's view of the store: every thread's pending calls, whoever owns it
    pending = await pending_calls(store, args.thread_id, check_owner=False)
    context = [e for e in await store.events(args.thread_id) if e.kind.startswith("context.")]
    if args.json:
        out.write(json.dumps({"id": info.id, "created_at": info.created_at,
                              "updated_at": info.updated_at, "metadata": info.metadata,
                              "messages": [m.to_json() for m in messages],
                              "pending": [p.to_json() for p in pending],
                              "context": [{"id": e.id, "kind": e.kind, "data": e.data,
                                           "created_at": e.created_at} for e in context]},
                             ensure_ascii=False) + "\n")
        return 0
    out.write(f"thread {info.id} · {info.message_count} messages · created "
              f"{_when(info.created_at)} · updated {_when(info.updated_at)}\n")
    out.write("".join(render_messages(messages)))
    if context:
        out.write("context (what requests show of it; every message above is stored whole):\n")
        out.write("".join(context_lines(context, messages)))
    if pending:
        out.write(f"waiting for approval ({len(pending)}), until "
                  f"{_when(min(p.expires_at for p in pending))}:\n")
        out.write("".join(line + "\n" for line in pending_lines(pending)))
    return 0
