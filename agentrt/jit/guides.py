"""Tool guides: the usage text ``initialize_tools`` returns, rendered deterministically.

A guide is built from the class docstring, the ``Tool.guide()`` hook and the
functions' schemas, with no timestamps, no set iteration and no dict-order
accidents, so the same tool renders the same bytes in every process. The
:class:`GuideCache` shares rendered guides under a versioned key (format,
tool version and a digest of the tool's content, so an edited tool never serves
a stale guide); the in-memory one is the default, a Redis one plugs in behind
the same two methods. The key assumes ``Tool.guide()`` depends on the class
alone (it is a hook for static usage notes, not per-instance state).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..tools import FunctionSpec, Tool

__all__ = ["GUIDE_FORMAT", "GuideCache", "GuideCacheStatistics", "MemoryGuideCache",
           "get_guides", "guide_key", "render_guide", "set_guides"]

log = get_logger("agentrt.jit")

GUIDE_FORMAT = "1"


class GuideCache(Protocol):
    """Rendered guides by versioned key. Implementations must not raise for a backend
    outage: ``get`` answers None and ``set`` does nothing (the guide is re-rendered)."""

    async def get(self, key: str) -> str | None:
        """The guide stored under ``key``, or None (not there, or the backend is down)."""
        ...

    async def set(self, key: str, value: str) -> None:
        """Store a rendered guide; a backend outage is ignored."""
        ...


@dataclass(frozen=True, slots=True)
class GuideCacheStatistics:
    """Look-ups answered (``hits``) and not (``misses``), and the guides held (``size``)."""

    hits: int
    misses: int
    size: int


class MemoryGuideCache:
    """An in-process LRU of rendered guides."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._hits = self._misses = 0

    async def get(self, key: str) -> str | None:
        value = self._entries.get(key)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
            self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: str) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def statistics(self) -> GuideCacheStatistics:
        """Its counters and size now."""
        return GuideCacheStatistics(self._hits, self._misses, len(self._entries))


async def get_guides(cache: GuideCache, keys: list[str]) -> dict[str, str]:
    """The cached guides of ``keys``; a cache with ``get_many`` (Redis) answers in one
    round trip. A cache outage costs a re-render, never the call."""
    try:
        get_many = getattr(cache, "get_many", None)
        if get_many is not None:
            found: dict[str, str] = await get_many(keys)
            return found
        values = [await cache.get(key) for key in keys]
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}
    except Exception as exc:
        log.warning("jit.guide_cache_error", op="get", error=repr(exc))
        return {}


async def set_guides(cache: GuideCache, guides: dict[str, str]) -> None:
    """Store rendered guides, in one round trip when the cache has ``set_many``."""
    if not guides:
        return
    try:
        set_many = getattr(cache, "set_many", None)
        if set_many is not None:
            await set_many(guides)
            return
        for key, value in guides.items():
            await cache.set(key, value)
    except Exception as exc:
        log.warning("jit.guide_cache_error", op="set", error=repr(exc))


def guide_key(tool: str, version: str, fingerprint: str, methods: Iterable[str]) -> str:
    """Changes whenever the rendered text could: format, version, content, allowed methods."""
    digest = hashlib.sha256(f"{fingerprint}|{','.join(sorted(methods))}".encode()).hexdigest()
    return f"agentrt:tool_guide:{GUIDE_FORMAT}:{tool}:{version}:{digest[:16]}"


def render_guide(tool: Tool, functions: Iterable[FunctionSpec]) -> str:
    """``## name``, the class docstring, the ``guide()`` text, then each function with
    its parameters. ``functions`` are the ones this agent may call, in class order."""
    cls = type(tool)
    parts = [f"## {cls.name}"]
    doc = inspect.cleandoc(cls.__doc__ or "").strip()
    if doc:
        parts.append(doc)
    extra = (tool.guide() or "").strip()
    if extra:
        parts.append(extra)
    lines = ["Functions:"]
    for spec in functions:
        schema = spec.input_schema
        required = set(schema.get("required", ()))
        params = schema.get("properties", {})
        signature = ", ".join(_param(name, prop, name in required) for name, prop in params.items())
        lines.append(f"- {spec.name}({signature}): {_one_paragraph(spec.description)}")
        for name, prop in params.items():
            if isinstance(prop, dict) and prop.get("description"):
                lines.append(f"  - {name}: {prop['description']}")
    if len(lines) > 1:
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _one_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


def _param(name: str, prop: Any, required: bool) -> str:
    kind = _type_name(prop)
    text = f"{name}: {kind}" if required else f"{name}?: {kind}"
    if isinstance(prop, dict) and "default" in prop:
        text += f" = {_json_literal(prop['default'])}"
    return text


def _type_name(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "any"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " | ".join(_json_literal(v) for v in prop["enum"])
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " | ".join(_type_name(p) for p in prop[key])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type_name(prop.get('items'))}"
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def _json_literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
