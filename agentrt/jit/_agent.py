"""From an agent's declared tools and config to its JITLoader (what ``Agent`` calls).

It takes plain values, not the Agent, so the JIT package knows nothing of the
class above it. The catalog comes from the runtime's :class:`CatalogCache`:
agents of one Runtime built from the same sources share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._context import RunContext
from ..mcp._catalog import merge_servers, server_tool_classes
from .config import JITConfig
from .detector import RuntimeSources
from .initialize_tools import ToolLoader
from .loader import JITLoader
from .redis_guides import RedisGuideCache
from .search_tools import ToolFinder

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..mcp._config import MCPServer
    from ..runtime import Runtime
    from ..tools import Tool
    from .manifest import Manifest

__all__ = ["build_loader"]


def build_loader(agent: str, *, identity: Mapping[str, str], deps: Mapping[str, Any],
                 core: Sequence[Tool | type[Tool]], catalog: Sequence[str | type[Tool]],
                 config: object, runtime: Runtime,
                 mcp_servers: Mapping[str, MCPServer] | None = None) -> JITLoader:
    """The loader of the agent named ``agent``: ``core`` are its always-active tools
    (its ``tools`` and ``core_tools``), ``catalog`` its ``tool_catalog``, ``config``
    its ``tool_config`` (a JITConfig, a mapping or a TOML file path)."""
    field = f"{agent}.tool_config"
    jit = _without_unasked_loader(JITConfig.coerce(config, field=field))
    servers = merge_servers(mcp_servers or {}, jit.mcp.servers, field=f"{agent}.mcp_servers")

    def build() -> JITLoader:
        return _loader(agent, identity=identity, deps=deps, core=core, catalog=catalog,
                       jit=jit, field=field, runtime=runtime, servers=servers)

    loader = build()
    if servers:  # a server's live tool list, when it differs from the manifest's, wins
        registry = runtime.mcp
        loader.follow(lambda: registry.generation, build)
    return loader


def _loader(agent: str, *, identity: Mapping[str, str], deps: Mapping[str, Any],
            core: Sequence[Tool | type[Tool]], catalog: Sequence[str | type[Tool]],
            jit: JITConfig, field: str, runtime: Runtime,
            servers: Mapping[str, MCPServer]) -> JITLoader:
    core_classes = [item if isinstance(item, type) else type(item) for item in core]
    listed = list(catalog)
    manifest: Manifest | bool | None = False  # the catalog looks it up
    if servers:  # each server's tools, from the manifest: no server is started
        manifest = runtime.catalogs.manifest(jit.manifest) if jit.manifest else None
        listed += server_tool_classes(servers, manifest, runtime.mcp,
                                      field=f"{agent}.mcp_servers")
    # search_tools is deferred mode's: in the catalog (so a config can name it) only there
    finder = [ToolFinder] if jit.tool_loading == "deferred" else []
    found = runtime.catalogs.catalog(jit, core=[*core_classes, ToolLoader, *finder],
                                     listed=listed, manifest=manifest)
    policy = jit.bind(found, field=field)
    prototype = RunContext(thread_id="", run_id="", agent=agent, identity=dict(identity),
                           deps=dict(deps))
    redis = runtime.redis
    return JITLoader(found, policy, core=core, prototype=prototype,
                     sources=RuntimeSources(runtime),
                     guide_cache=RedisGuideCache(redis) if redis is not None else None,
                     loading=jit.tool_loading, search=jit.tool_search or "regex", field=field,
                     telemetry=runtime.telemetry, search_first=jit.search_first)


def _without_unasked_loader(config: JITConfig) -> JITConfig:
    """With ``server_search`` the API's search tool finds tools and shows their
    definitions, and a tool is activated on its first call: initialize_tools would add
    only its guides, at some 140 tokens on every request. It is disabled there unless
    the config enables ``tool_loader`` by name."""
    rule = config.tools.get(ToolLoader.name)
    if config.tool_loading != "server_search" or (rule is not None and rule.enabled):
        return config
    return config.model_copy(update={"disabled": (*config.disabled, ToolLoader.name)})
