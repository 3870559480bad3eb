from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt import ConfigError, DependencyCycleError, Tool, ToolDefinitionError, function
from agentrt.jit import describe, load_catalog, read_manifest, render_manifest
from agentrt.jit.catalog import import_tool, installed_entry_points
from agentrt.jit.manifest import Manifest
from agentrt.testing import capture_events

from .fixtures import IMPORTS, PACKAGE
from .helpers import BROWSER, CATALOG, FILES, MAILER, PRESENTATION, SEARCH, write_manifest


def _not_imported(*modules: str) -> None:
    for module in modules:
        assert IMPORTS[module] == 0 and f"{PACKAGE}.{module}" not in sys.modules, module


def test_the_catalog_knows_every_tool_without_importing_any(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    catalog = load_catalog(listed=CATALOG, manifest=manifest)
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


def test_the_index_is_read_at_start_up_and_each_entry_on_demand(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    manifest = read_manifest(file)
    assert manifest is not None and len(manifest) == len(CATALOG)
    catalog = load_catalog(core=[OtherBrowser], listed=CATALOG, manifest=manifest)
    assert catalog.tool_for("fetch_page") == "web_search"
    assert sorted(catalog.names()) == sorted(["other_browser", "web_search", "files",
                                              "presentation", "browser", "mailer", "shouty"])
    assert len(catalog) == 7 and "files" in catalog and "nope" not in catalog
    assert catalog.functions_of("files") == ("read_file", "write_file", "delete_file")
    assert manifest._details is None and not manifest._entries  # the first line alone
    assert catalog.entry("web_search").summary == "Search the web and read pages."
    assert manifest._details is not None and not manifest._entries  # and the second
    details = catalog.details("web_search")
    assert details is not None and details["import_path"] == SEARCH
    assert details["functions"][0]["definition"]["input_schema"]["required"] == ["query"]
    assert list(manifest._entries) == ["web_search"]  # one entry parsed, not the others
    assert catalog.details("other_browser") is None  # described by its class
    lines = file.read_text().splitlines()
    index = json.loads(lines[0])
    assert (index["format"], index["version"]) == ("agentrt-tools-manifest", 4)
    names = index["tools"]["name"]
    assert names == sorted(names) and len(names) == len(CATALOG)
    assert json.loads(lines[1])["summary"][names.index("web_search")] == (
        "Search the web and read pages.")
    assert [json.loads(line)["name"] for line in lines[2:-1]] == names  # an entry a line
    assert index["sections"] == ["search"]  # then the search index's words
    assert json.loads(lines[-1])["section"] == "search"
    assert index["tools"]["requires"] == {"presentation": ["files", "web_search"]}
    tools = index["tools"]
    assert "fetch_page" in tools["functions"][tools["name"].index("web_search")].split()


def test_an_older_manifest_format_is_refused_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "tools.manifest.json"
    version_2 = ('{"format": "agentrt-tools-manifest", "version": 2, "startup_bytes": 20,\n'
                 '"paths": [],\n"by_name": {},\n"requires": {},\n"outside": {},\n'
                 '"functions": {},\n"index": {},\n"tools": [\n\n]}\n')
    version_1 = json.dumps({"format": "agentrt-tools-manifest", "version": 1, "names": {},
                            "requires": {}, "functions": {}, "index": {}, "tools": []},
                           indent=2)
    version_3 = ('{"format": "agentrt-tools-manifest", "version": 3, "tools": {"name": [], '
                 '"kind": [], "location": [], "requires": {}, "functions": {}}, '
                 '"sections": []}\n{"version": [], "summary": [], "fingerprint": []}\n')
    for version, text in ((3, version_3), (2, version_2), (1, version_1)):
        file.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            read_manifest(file)
        assert caught.value.field == str(file)
        assert str(caught.value) == (
            f"{file}: tool manifest format version {version} (this agentrt reads version 4); "
            "regenerate it with `agentrt tools manifest`")


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
        load_catalog(listed=[SEARCH, OtherSearch], manifest=manifest)
    assert "'web_search' is defined by both tool 'web_search'" in str(caught.value)
    assert "tool 'other_search'" in str(caught.value)
    with pytest.raises(ToolDefinitionError, match="both tool 'other_search' and tool 'web_search'"):
        render_manifest([describe(import_tool(SEARCH), SEARCH),
                         describe(OtherSearch, "tests:OtherSearch")])


def test_an_unknown_dependency_fails_at_start_up(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError, match="'presentation' requires 'files', which is "
                                                  "not in this agent's catalog"):
        load_catalog(listed=[PRESENTATION, SEARCH], manifest=manifest)


def test_two_classes_with_one_name_fail(tmp_path: Path) -> None:
    class Impostor(Tool):
        name = "web_search"

    manifest = read_manifest(write_manifest(tmp_path))
    with pytest.raises(ToolDefinitionError, match="two tools are named 'web_search'"):
        load_catalog(listed=[SEARCH, Impostor], manifest=manifest)


def test_a_path_missing_from_the_manifest_is_imported_with_a_warning(tmp_path: Path) -> None:
    manifest = read_manifest(write_manifest(tmp_path, [SEARCH]))
    with capture_events() as logs:
        catalog = load_catalog(listed=[SEARCH, FILES], manifest=manifest)
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
        catalog = load_catalog(listed=[SEARCH], manifest=manifest,
                               entry_points=installed_entry_points())
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
        catalog = load_catalog(listed=[MyBrowser], entry_points=installed_entry_points())
    assert catalog.entry("browser").cls is MyBrowser
    assert any(e["event"] == "jit.tool_shadowed" and e["tool"] == "browser" for e in logs)


# -- the manifest's layout: what start-up reads, parses and checks ------------------


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
        load_catalog(core=[OtherSearch], listed=CATALOG, manifest=manifest)


def test_start_up_builds_no_function_map(tmp_path: Path) -> None:
    """The map of every manifest function to its tool costs some 0.45 ms at a thousand
    tools; start-up checks the core tools' few functions against the manifest without
    it, and the first lookup of a catalog function builds it."""
    manifest = read_manifest(write_manifest(tmp_path))
    assert manifest is not None
    catalog = load_catalog(core=[OtherBrowser], listed=CATALOG, manifest=manifest)
    assert manifest._functions is None
    assert catalog.tool_for("browse") == "other_browser" and manifest._functions is None
    assert catalog.tool_for("fetch_page") == "web_search"
    assert manifest._functions is not None


_NAMES = st.sampled_from(["a", "b", "ab", "ba", "a_b", "b_a"])
_SEPARATORS = st.sampled_from([" ", "  ", "\t", " \n", "\xa0"])


@given(st.lists(st.tuples(st.lists(_NAMES, max_size=3), _SEPARATORS), max_size=4),
       st.lists(st.one_of(_NAMES, st.sampled_from(["", " ", "a b", "b a", "a\tb"])),
                min_size=1))
def test_the_owner_of_a_function_is_the_maps_whatever_separates_the_names(
        tools: list[tuple[list[str], str]], asked: list[str]) -> None:
    """Before the map is built, owner() answers a function no tool defines from the
    column's text; it must agree with the map, which splits the column at any white
    space, for every name asked and every separator a hand-edited file may hold."""
    names = [f"tool{i}" for i in range(len(tools))]
    column = [separator.join(functions) for functions, separator in tools]
    expected = {fn: name for name, text in zip(names, column, strict=True)
                for fn in text.split()}
    manifest = Manifest(Path("m.json"), b"", {"name": names, "kind": ["python"] * len(names),
                                              "location": [f"m:T{i}" for i in names],
                                              "functions": column}, {})
    assert [manifest.owner(fn) for fn in asked] == [expected.get(fn) for fn in asked]
    assert manifest.functions == expected


def test_a_function_column_that_is_not_all_strings_is_a_config_error(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    index, rest = file.read_text().split("\n", 1)
    data = json.loads(index)
    data["tools"]["functions"][0] = 7
    file.write_text(json.dumps(data) + "\n" + rest, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"`tools\.functions` must list strings") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)


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
    assert manifest is not None and manifest.requires == {"web_search": ["helper"]}
    with pytest.raises(ToolDefinitionError, match="'web_search' requires 'helper', which is "
                                                  "not in this agent's catalog"):
        load_catalog(listed=[SEARCH], manifest=manifest)
    # with the helper as a class: a cycle through it and the manifest, found from it
    with pytest.raises(DependencyCycleError, match="helper -> web_search -> helper"):
        load_catalog(listed=[SEARCH, Helper], manifest=manifest)


def test_a_broken_index_or_entry_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    text = file.read_text()
    file.write_text(text.replace('"version": 4', '"version": 9', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"format version 9 .* reads version 4") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)
    file.write_text(text.replace('"kind": ["python", ', '"kind": [', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"malformed index: `tools.kind` must have one item "
                                          r"per tool") as caught:
        read_manifest(file)
    assert caught.value.field == str(file)
    lines = text.splitlines(keepends=True)
    file.write_text("".join([*lines[:2], "{not json\n", *lines[3:]]), encoding="utf-8")
    manifest = read_manifest(file)
    assert manifest is not None and manifest.entry("files") is not None
    with pytest.raises(ConfigError, match="line 3 is not JSON") as caught:
        manifest.entry("browser")
    assert caught.value.field == str(file)


def test_an_entry_of_a_file_rewritten_since_its_index_was_read_is_not_used(
        tmp_path: Path) -> None:
    file = write_manifest(tmp_path)
    manifest = read_manifest(file)
    assert manifest is not None
    write_manifest(tmp_path, [SEARCH])  # regenerated while the process runs
    with capture_events() as logs:
        assert manifest.entry("web_search") is None
    assert [e["event"] for e in logs] == ["jit.manifest_changed"]


def test_the_format_has_room_for_mcp_servers_and_sections(tmp_path: Path) -> None:
    """What the MCP issue records (a server's tools, with their annotations) and what
    the client-side search caches (a section), read back without importing anything."""
    git = {"name": "git", "kind": "mcp", "server": "git", "version": "1.2",
           "summary": "Git over MCP.", "requires": [],
           "functions": [{"name": "git_status", "summary": "Status.",
                          "annotations": {"readOnlyHint": True},
                          "definition": {"name": "git_status", "description": "Status.",
                                         "input_schema": {"type": "object"}}}],
           "fingerprint": "f" * 32}
    search = describe(import_tool(SEARCH), SEARCH)
    file = tmp_path / "m.json"
    file.write_text(render_manifest([git, search], sections={"search": {"terms": {"a": [0]}}}),
                    encoding="utf-8")
    manifest = read_manifest(file)
    assert manifest is not None and manifest.sections == ("search",)
    row = manifest.tool("git")
    # an MCP server's functions are named per agent (its `prefix`): not in the index's map
    assert (row.kind, row.location, row.functions) == ("mcp", "git", ())
    assert manifest.import_paths() == [SEARCH] and "git_status" not in manifest.functions
    assert manifest.entry("git")["functions"][0]["annotations"] == {"readOnlyHint": True}  # type: ignore[index]
    assert manifest.section("search") == {"terms": {"a": [0]}}
    assert manifest.section("other") is None
    file.write_text(file.read_text().replace('"mcp"', '"wasm"', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown tool kind 'wasm'"):
        read_manifest(file)
