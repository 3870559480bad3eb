"""From an Agent's class attributes to its JITLoader (what ``Agent._tool_provider`` calls).

The catalog is built once per process for a given set of sources and manifest
file and shared by every agent built from them: it is immutable, and rebuilding
it per agent would make start-up grow with the catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._context import RunContext
from .catalog import Catalog, installed_entry_points, load_catalog
from .config import JITConfig
from .core import ToolLoader
from .detector import RuntimeSources
from .loader import JITLoader
from .manifest import read_manifest
from .redis_guides import RedisGuideCache

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..agent import Agent
    from ..loop import ThreadManager
    from ..tools import Tool
    from .manifest import Manifest

__all__ = ["build_loader", "catalog_for"]

_MEMO_SIZE = 32
# key -> (the agent's tool_catalog object, catalog). Keyed by the identity of the
# (class-level, usually thousand-entry) tool_catalog sequence, kept alive by the value
# so its id cannot be reused: a hit costs O(1), not a hash of every import path.
_catalogs: dict[tuple[Any, ...], tuple[object, Catalog]] = {}


def catalog_for(config: JITConfig, *, core: Sequence[type[Tool]] = (),
                listed: Sequence[str | type[Tool]] = ()) -> Catalog:
    """The catalog for these sources (memoized per process; see the module docstring)."""
    manifest: Manifest | None = read_manifest(config.manifest) if config.manifest else None
    points = installed_entry_points() if config.entry_points else ()
    key = (tuple(core), id(listed), config.catalog, manifest, points)
    found = _catalogs.get(key)
    if found is not None and found[0] is listed:
        return found[1]
    catalog = load_catalog(core=core, listed=listed, configured=config.catalog,
                           manifest=manifest, include_entry_points=config.entry_points)
    if len(_catalogs) >= _MEMO_SIZE:
        _catalogs.pop(next(iter(_catalogs)))
    _catalogs[key] = (listed, catalog)
    return catalog


def build_loader(agent: Agent, *, manager: Callable[[], ThreadManager]) -> JITLoader:
    field = f"{agent.name}.tool_config"
    config = _without_unasked_loader(JITConfig.coerce(agent.tool_config, field=field))
    core: list[Tool | type[Tool]] = [*agent.registry, *agent.core_tools]
    core_classes = [item if isinstance(item, type) else type(item) for item in core]
    catalog = catalog_for(config, core=[*core_classes, ToolLoader], listed=agent.tool_catalog)
    policy = config.bind(catalog, field=field)
    prototype = RunContext(thread_id="", run_id="", agent=agent.name,
                           identity=dict(agent.identity), deps=dict(agent.deps))
    redis = agent.runtime.redis
    return JITLoader(catalog, policy, core=core, prototype=prototype,
                     sources=RuntimeSources(agent.runtime, manager),
                     guide_cache=RedisGuideCache(redis) if redis is not None else None,
                     loading=config.tool_loading, search=config.tool_search or "regex",
                     field=field)


def _without_unasked_loader(config: JITConfig) -> JITConfig:
    """With ``server_search`` the API's search tool finds tools and shows their
    definitions, and a tool is activated on its first call: initialize_tools would add
    only its guides, at some 140 tokens on every request. It is disabled there unless
    the config enables ``tool_loader`` by name."""
    rule = config.tools.get(ToolLoader.name)
    if config.tool_loading != "server_search" or (rule is not None and rule.enabled):
        return config
    return config.model_copy(update={"disabled": (*config.disabled, ToolLoader.name)})
