"""CatalogCache: what a Runtime's JIT agents share, owned by the Runtime (no module
globals): a manifest read once per file version, a catalog built once per sources."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anthropic
import pytest

import agentrt.runtime
from agentrt import JITConfig, MemoryThreadStore, Runtime, load_settings
from agentrt.jit import CatalogCache, ToolLoader, read_manifest, render_manifest
from agentrt.jit.catalog import record_entry_points

from .agents import research_agent
from .fixtures import IMPORTS
from .helpers import BROWSER, CATALOG, FILES, MAILER, SEARCH, harness, write_manifest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentrt.jit.manifest import Manifest

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


# -- the installed entry points: the manifest's record, or a scan --------------------


def _install(site: Path, name: str, point: str) -> None:
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
                                   encoding="utf-8")
    (dist / "entry_points.txt").write_text(f"[agentrt.tools]\n{point}\n", encoding="utf-8")


_LONG_AGO = 1_000_000_000  # ns: a directory time no install of this test can give


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A sys.path of one directory holding a distribution with an agentrt.tools entry
    point, installed long ago."""
    site = tmp_path / "site"
    _install(site, "fixture_plugins", f"browser = {BROWSER}")
    os.utime(site, ns=(_LONG_AGO, _LONG_AGO))
    monkeypatch.setattr(sys, "path", [str(site)])
    return site


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entry_points.txt files read from now on (by a scan)."""
    read = importlib.metadata.PathDistribution.read_text
    found: list[str] = []

    def counting(self: importlib.metadata.PathDistribution, filename: str) -> str | None:
        if filename == "entry_points.txt":
            found.append(filename)
        return read(self, filename)

    monkeypatch.setattr(importlib.metadata.PathDistribution, "read_text", counting)
    return found


def _recorded(directory: Path) -> Manifest:
    """A manifest written as `agentrt tools manifest` writes it: with the record."""
    file = directory / "recorded.manifest.json"
    file.write_text(render_manifest([], entry_points=record_entry_points()), encoding="utf-8")
    manifest = read_manifest(file)
    assert manifest is not None and manifest.entry_points is not None
    return manifest


def test_an_unchanged_environment_uses_the_record_without_reading_entry_points(
        site: Path, reads: list[str], tmp_path: Path) -> None:
    manifest = _recorded(tmp_path)
    reads.clear()
    assert CatalogCache().entry_points(manifest) == (("browser", BROWSER),)
    assert reads == []


def test_another_processs_first_path_keeps_the_record_unless_it_holds_distributions(
        site: Path, reads: list[str], tmp_path: Path) -> None:
    manifest = _recorded(tmp_path)
    app = tmp_path / "app"
    (app / "module").mkdir(parents=True)
    sys.path.insert(0, str(app))  # the script's directory, not the CLI's
    assert CatalogCache().entry_points(manifest) == (("browser", BROWSER),)
    _install(app, "app_plugins", f"mailer = {MAILER}")
    reads.clear()
    assert ("mailer", MAILER) in CatalogCache().entry_points(manifest)
    assert reads


def test_a_distribution_installed_after_the_manifest_was_written_is_found(
        site: Path, reads: list[str], tmp_path: Path) -> None:
    manifest = _recorded(tmp_path)
    _install(site, "late_plugins", f"mailer = {MAILER}")
    reads.clear()
    found = CatalogCache().entry_points(manifest)
    assert set(found) == {("browser", BROWSER), ("mailer", MAILER)} and reads


def test_a_recorded_directory_whose_time_changed_is_scanned_again(
        site: Path, reads: list[str], tmp_path: Path) -> None:
    manifest = _recorded(tmp_path)
    os.utime(site, ns=(2 * _LONG_AGO, 2 * _LONG_AGO))
    reads.clear()
    assert CatalogCache().entry_points(manifest) == (("browser", BROWSER),)
    assert reads


def test_a_recorded_directory_gone_from_sys_path_is_scanned_again(
        site: Path, reads: list[str], tmp_path: Path) -> None:
    manifest = _recorded(tmp_path)
    sys.path.remove(str(site))
    reads.clear()
    assert CatalogCache().entry_points(manifest) == ()
