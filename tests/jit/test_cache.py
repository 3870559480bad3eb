"""CatalogCache: what a Runtime's JIT agents share, owned by the Runtime (no module
globals): a manifest read once per file version, a catalog built once per sources."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import anthropic
import pytest

import agentrt.runtime
from agentrt import JITConfig, MemoryThreadStore, Runtime, load_settings
from agentrt.jit import CatalogCache, ToolLoader

from .agents import research_agent
from .fixtures import IMPORTS
from .helpers import BROWSER, CATALOG, FILES, SEARCH, harness, write_manifest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.anyio


def test_a_manifest_is_read_once_per_file_version(tmp_path: Path) -> None:
    cache = CatalogCache()
    file = write_manifest(tmp_path)
    first = cache.manifest(file)
    assert first is not None and cache.manifest(str(file)) is first
    write_manifest(tmp_path, [SEARCH])  # regenerated: a new size, a new version
    again = cache.manifest(file)
    assert again is not first and again is not None and again.names == ["web_search"]
    assert cache.manifest(tmp_path / "absent.json") is None


def test_a_catalog_is_built_once_per_set_of_sources(tmp_path: Path) -> None:
    cache = CatalogCache()
    config = JITConfig(manifest=write_manifest(tmp_path), entry_points=False)
    catalog = cache.catalog(config, core=[ToolLoader], listed=list(CATALOG))
    assert cache.catalog(config, core=[ToolLoader], listed=tuple(CATALOG)) is catalog
    assert cache.catalog(config, core=[ToolLoader], listed=[SEARCH]) is not catalog
    assert cache.catalog(config, listed=list(CATALOG)) is not catalog  # other core tools
    assert not IMPORTS


def test_the_cache_keeps_its_most_recent_values(tmp_path: Path) -> None:
    cache = CatalogCache(limit=2)
    config = JITConfig(manifest=None, entry_points=False)
    paths = [SEARCH, FILES, BROWSER]
    catalogs = [cache.catalog(config, listed=[path]) for path in paths]
    assert cache.catalog(config, listed=[BROWSER]) is catalogs[2]
    assert cache.catalog(config, listed=[SEARCH]) is not catalogs[0]  # evicted


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9") as client:
        yield Runtime(load_settings(thread_store="memory"), client=client,
                      store=MemoryThreadStore())


async def test_agents_of_one_runtime_share_its_catalogs(tmp_path: Path, runtime: Runtime
                                                        ) -> None:
    agent_cls = research_agent(write_manifest(tmp_path))
    first, second = agent_cls(runtime), agent_cls(runtime)
    one, two = await first.tools_for(), await second.tools_for()
    assert one.definitions() == two.definitions()
    catalogs = runtime.catalogs
    assert isinstance(catalogs, CatalogCache) and runtime.catalogs is catalogs
    assert len(catalogs._catalogs) == 1 and len(catalogs._manifests) == 1
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9") as client:
        other = Runtime(load_settings(thread_store="memory"), client=client,
                        store=MemoryThreadStore())
        agent_cls(other)
        assert other.catalogs is not catalogs  # nothing shared through the module


def test_the_runtime_module_imports_the_jit_package_only_when_asked() -> None:
    """``Runtime.catalogs`` imports it on first use; at module level, only for types."""
    tree = ast.parse(Path(agentrt.runtime.__file__).read_text(encoding="utf-8"))
    top = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [n.module for n in top if n.module and "jit" in n.module]


async def test_an_agent_run_reads_only_the_index_when_it_defers_nothing(tmp_path: Path
                                                                        ) -> None:
    from agentrt.testing import Reply

    manifest = write_manifest(tmp_path)
    async with harness(research_agent(manifest, tool_loading="append"),
                       [Reply(text="hi")]) as (agent, _):
        await agent.run("hi")
        read = agent.runtime.catalogs.manifest(manifest)
    assert read is not None and not read._entries  # the listing read the second line
