from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest

from agentrt import ConfigError, DependencyCycleError, Tool, ToolDefinitionError, function
from agentrt.jit import describe, load_catalog, read_manifest, render_manifest
from agentrt.jit.catalog import import_tool
from agentrt.testing import capture_events

from .fixtures import IMPORTS, PACKAGE
from .helpers import BROWSER, CATALOG, FILES, MAILER, PRESENTATION, SEARCH, write_manifest

if TYPE_CHECKING:
    from pathlib import Path


def _not_imported(*modules: str) -> None:
    for module in modules:
        assert IMPORTS[module] == 0 and f"{PACKAGE}.{module}" not in sys.modules, module


def test_the_catalog_knows_every_tool_without_importing_any(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    catalog = load_catalog(listed=CATALOG, manifest=manifest, include_entry_points=False)
    _not_imported("search", "files", "presentation", "browser", "mailer", "shouty")
    search = catalog.entry("web_search")
    assert search.import_path == SEARCH and search.cls is None and search.version == "1"
    assert search.summary == "Search the web and read pages."
    assert search.functions == ("web_search", "fetch_page")
    assert catalog.entry("presentation").requires == ("files", "web_search")
    assert catalog.tool_for("fetch_page") == "web_search"
    assert catalog.tool_for("make_slides") == "presentation"
    assert catalog.tool_for("nothing") is None
    assert catalog.graph.layer("presentation") == 1


def test_the_manifest_is_read_index_first_and_details_on_demand(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    manifest = read_manifest(file)
    assert manifest is not None and len(manifest) == len(CATALOG)
    assert manifest._tools is None  # start-up read its first lines, not the definitions
    details = manifest.details(SEARCH)
    assert details is not None
    assert details["functions"][0]["definition"]["input_schema"]["required"] == ["query"]
    assert read_manifest(file) is manifest  # one parse per file version per process
    assert json.loads(file.read_text())["format"] == "agentrt-tools-manifest"


def test_a_reformatted_manifest_still_reads(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    original = read_manifest(file)
    file.write_text(json.dumps(json.loads(file.read_text()), indent=2), encoding="utf-8")
    again = read_manifest(file)
    assert again is not original and again is not None
    assert again.row(SEARCH) == original.row(SEARCH)  # type: ignore[union-attr]


def test_a_file_that_is_not_a_manifest_is_a_config_error(tmp_path: Path) -> None:
    file = tmp_path / "m.json"
    file.write_text('{"tools": []}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not an agentrt tool manifest") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)
    assert read_manifest(tmp_path / "absent.json") is None


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    entries = [describe(import_tool(p), p) for p in CATALOG]
    assert render_manifest(entries) == render_manifest(reversed(entries))


class OtherSearch(Tool):
    name = "other_search"

    @function
    async def web_search(self, q: str) -> str:
        """Also searches."""
        return q


def test_duplicate_function_names_fail_naming_both_tools(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError) as caught:
        load_catalog(listed=[SEARCH, OtherSearch], manifest=manifest,
                     include_entry_points=False)
    assert "'web_search' is defined by both tool 'web_search'" in str(caught.value)
    assert "tool 'other_search'" in str(caught.value)
    with pytest.raises(ToolDefinitionError, match="both tool 'other_search' and tool 'web_search'"):
        render_manifest([describe(import_tool(SEARCH), SEARCH),
                         describe(OtherSearch, "tests:OtherSearch")])


def test_an_unknown_dependency_fails_at_start_up(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError, match="'presentation' requires 'files', which is "
                                                  "not in this agent's catalog"):
        load_catalog(listed=[PRESENTATION, SEARCH], manifest=manifest,
                     include_entry_points=False)


def test_two_classes_with_one_name_fail(tmp_path: Path) -> None:
    class Impostor(Tool):
        name = "web_search"

    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError, match="two tools are named 'web_search'"):
        load_catalog(listed=[SEARCH, Impostor], manifest=manifest, include_entry_points=False)


def test_a_path_missing_from_the_manifest_is_imported_with_a_warning(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path, [SEARCH]))
    with capture_events() as logs:
        catalog = load_catalog(listed=[SEARCH, FILES], manifest=manifest,
                               include_entry_points=False)
    assert IMPORTS["files"] == 1 and IMPORTS["search"] == 0
    assert catalog.entry("files").cls is not None
    warning = next(e for e in logs if e["event"] == "jit.not_in_manifest")
    assert warning["import_path"] == FILES and warning["log_level"] == "warning"


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution declaring two tools in the agentrt.tools group."""
    dist = tmp_path / "site" / "fixture_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fixture-plugins\n"
                                   "Version: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        f"[agentrt.tools]\nbrowser = {BROWSER}\nmailer = {MAILER}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tmp_path


def test_entry_points_add_tools_lazily(plugins: Path) -> None:
    manifest = read_manifest(write_manifest(plugins, [SEARCH, BROWSER]))
    with capture_events() as logs:
        catalog = load_catalog(listed=[SEARCH], manifest=manifest)
    _not_imported("browser", "mailer", "search")
    browser, mailer = catalog.entry("browser"), catalog.entry("mailer")
    assert browser.source == "entry_point" and browser.functions == ("open_url",)
    assert mailer.source == "entry_point" and not mailer.described and mailer.functions == ()
    assert mailer.import_path == MAILER
    warning = next(e for e in logs if e["event"] == "jit.not_in_manifest")
    assert warning["tool"] == "mailer" and warning["imported"] is False


def test_an_explicit_tool_shadows_an_entry_point_of_the_same_name(plugins: Path) -> None:
    class MyBrowser(Tool):
        """Mine."""

        name = "browser"

    with capture_events() as logs:
        catalog = load_catalog(listed=[MyBrowser], manifest=None)
    assert catalog.entry("browser").cls is MyBrowser
    assert any(e["event"] == "jit.tool_shadowed" and e["tool"] == "browser" for e in logs)


# -- the manifest's layout: what start-up reads, parses and checks ------------------


def test_start_up_parses_no_map_of_a_manifest_listing_every_tool(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    assert manifest is not None and manifest.checked
    catalog = load_catalog(core=[OtherBrowser], listed=CATALOG, manifest=manifest,
                           include_entry_points=False)
    # the core tool's name and function were looked up in the sections' text
    assert {k: type(v) for k, v in manifest._sections.items()} == {
        "paths": list, "by_name": slice, "requires": slice, "outside": dict,
        "functions": slice}
    assert catalog.tool_for("fetch_page") == "web_search"  # parses the map, on first use
    assert catalog.entry("web_search").summary == "Search the web and read pages."
    assert sorted(catalog.names()) == sorted(["other_browser", "web_search", "files",
                                              "presentation", "browser", "mailer", "shouty"])
    assert len(catalog) == 7 and "files" in catalog and "nope" not in catalog


class OtherBrowser(Tool):
    """A core tool the manifest does not describe."""

    name = "other_browser"

    @function
    async def browse(self, url: str) -> str:
        """Browse."""
        return url


def test_a_core_function_clashing_with_the_manifest_fails_naming_both(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError, match=r"'web_search' is defined by both tool "
                                                  r"'web_search'.* and tool 'other_search'"):
        load_catalog(core=[OtherSearch], listed=CATALOG, manifest=manifest,
                     include_entry_points=False)


def test_look_ups_in_the_text_agree_with_the_parsed_maps(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    assert manifest is not None
    # "web_search" is a tool, a function and an owner; "files" a tool and a value
    wanted = ["web_search", "files", "make_slides", "Search", "nope", "open_url"]
    found = manifest.owners(wanted), manifest.paths_of(wanted)
    assert isinstance(manifest._sections["functions"], slice)  # still unparsed
    assert found == ({k: v for k, v in manifest.functions.items() if k in wanted},
                     {k: v for k, v in manifest.by_name.items() if k in wanted})
    assert found[0] == {"web_search": "web_search", "make_slides": "presentation",
                        "open_url": "browser"}


def test_a_manifest_cycle_fails_when_it_is_written(tmp_path: Path) -> None:
    search, files = describe(import_tool(SEARCH), SEARCH), describe(import_tool(FILES), FILES)
    search["requires"], files["requires"] = ["files"], ["web_search"]
    with pytest.raises(DependencyCycleError, match="files -> web_search -> files"):
        render_manifest([search, files])


class Helper(Tool):
    """Needed by a manifest tool, and needing one."""

    name = "helper"
    requires = ("web_search",)


def test_edges_leaving_the_manifest_are_checked_at_start_up(tmp_path: Path) -> None:
    search = describe(import_tool(SEARCH), SEARCH)
    search["requires"] = ["helper"]  # a tool the manifest does not describe
    file = tmp_path / "m.json"
    file.write_text(render_manifest([search]), encoding="utf-8")
    manifest = read_manifest(file)
    assert manifest is not None and manifest.outside == {"web_search": ["helper"]}
    with pytest.raises(ToolDefinitionError, match="'web_search' requires 'helper', which is "
                                                  "not in this agent's catalog"):
        load_catalog(listed=[SEARCH], manifest=manifest, include_entry_points=False)
    # with the helper as a class: a cycle through it and the manifest, found from it
    with pytest.raises(DependencyCycleError, match="helper -> web_search -> helper"):
        load_catalog(listed=[SEARCH, Helper], manifest=manifest, include_entry_points=False)


def _version_1(file: Path) -> None:
    """Rewrite a manifest as version 1 wrote it (names: {path: name}, no lists)."""
    data = json.loads(file.read_text())
    names = {path: name for name, path in data.pop("by_name").items()}
    del data["paths"], data["outside"], data["startup_bytes"]
    file.write_text(json.dumps({**data, "version": 1, "names": names}), encoding="utf-8")


def test_a_version_1_manifest_still_reads_and_is_checked_in_full(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    _version_1(file)
    manifest = read_manifest(file)
    assert manifest is not None and not manifest.checked
    catalog = load_catalog(listed=CATALOG, manifest=manifest, include_entry_points=False)
    assert catalog.entry("presentation").requires == ("files", "web_search")
    assert catalog.tool_for("read_file") == "files"
    with pytest.raises(ToolDefinitionError, match="'presentation' requires 'files'"):
        load_catalog(listed=[PRESENTATION, SEARCH], manifest=manifest,
                     include_entry_points=False)


def test_an_unknown_version_or_a_broken_layout_is_a_config_error(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    text = file.read_text()
    file.write_text(text.replace('"version": 2', '"version": 9'), encoding="utf-8")
    with pytest.raises(ConfigError, match="manifest version 9 is not one") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)
    # an edit that changes the start-up lines' length: read as plain JSON, checked in full
    file.write_text(text.replace('"requires": {', '"requires":  {'), encoding="utf-8")
    manifest = read_manifest(file)
    assert manifest is not None and not manifest.checked and len(manifest) == len(CATALOG)
    file.write_text(text.replace('"paths": [', '"paths": [3, '), encoding="utf-8")
    with pytest.raises(ConfigError, match="`paths` must list the import paths") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)
