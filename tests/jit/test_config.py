from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentrt import ConfigError, JITConfig, ToolRule
from agentrt.jit import Catalog, CatalogEntry
from agentrt.jit.config import IMPORT_PATH, all_import_paths


def _catalog() -> Catalog:
    def entry(name: str, *functions: str) -> CatalogEntry:
        return CatalogEntry(name=name, source="agent", import_path=f"pkg.{name}:T",
                            functions=functions)

    return Catalog([entry("web_search", "web_search", "fetch_page"),
                    entry("files", "read_file", "write_file", "delete_file"),
                    entry("browser", "open_url"),
                    CatalogEntry(name="plugin", source="entry_point", import_path="p.m:P",
                                 described=False)])


def test_an_allow_list_blocks_unlisted_tools_and_left_out_methods() -> None:
    config = JITConfig(tools={"web_search": True, "browser": False,
                              "files": {"enabled": True, "methods": ["read_file"]}})
    policy = config.bind(_catalog())
    assert policy.may_activate("web_search") and policy.may_activate("files")
    assert not policy.may_activate("browser")
    assert not policy.may_activate("plugin")  # not listed
    assert not policy.may_activate("nope")
    assert policy.may_call("read_file") and policy.may_call("fetch_page")
    assert not policy.may_call("write_file") and not policy.may_call("open_url")
    assert not policy.may_call("nope")
    assert policy.methods("files") == {"read_file"} and policy.methods("web_search") is None
    assert policy.refusal("browser") == "tool 'browser' is not enabled for this agent"
    assert policy.refusal("plugin") == "tool 'plugin' is not enabled for this agent"
    assert policy.refusal("web_search") is None


def test_without_a_tools_table_everything_but_the_disabled_is_allowed() -> None:
    policy = JITConfig(disabled=("browser",)).bind(_catalog())
    assert policy.may_activate("plugin") and policy.may_call("write_file")
    assert policy.refusal("browser") == "tool 'browser' is disabled for this agent"


def test_allow_unlisted_and_disabled_win_over_the_table() -> None:
    config = JITConfig(tools={"files": True}, disabled=("files",), allow_unlisted=True)
    policy = config.bind(_catalog())
    assert not policy.may_activate("files")  # disabled wins
    assert policy.may_activate("browser")  # unlisted, allowed explicitly


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"tools": {"files": "yes"}}, "A.tool_config.tools.files", "expected true, false or"),
    ({"tools": {"files": {"enabled": True, "methods": []}}},
     "A.tool_config.tools.files.methods", "must name at least one function"),
    ({"tools": {"files": {"methods": ["a", "a"]}}}, "A.tool_config.tools.files.methods",
     "lists 'a' more than once"),
    ({"tools": {"files": {"enable": True}}}, "A.tool_config.tools.files.enable",
     "Extra inputs are not permitted"),
    ({"tools": {"files": {"enabled": "on"}}}, "A.tool_config.tools.files.enabled",
     "valid boolean"),
    ({"catalog": ["not a path"]}, "A.tool_config.catalog", "is not an import path"),
    ({"disabled": "browser"}, "A.tool_config.disabled", "valid tuple"),
    ({"tool": {}}, "A.tool_config.tool", "Extra inputs are not permitted"),
])
def test_a_malformed_entry_names_its_field(data: dict[str, Any], field: str,
                                           message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JITConfig.parse(data, field="A.tool_config")
    assert caught.value.field == field
    assert message in str(caught.value)


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"tools": {"web_serch": True}}, "A.tools.web_serch",
     "unknown tool 'web_serch' (did you mean 'web_search'?)"),
    ({"disabled": ["browsr"]}, "A.disabled[0]", "unknown tool 'browsr'"),
    ({"tools": {"files": {"methods": ["read_fil"]}}}, "A.tools.files.methods",
     "tool 'files' has no function 'read_fil' (did you mean 'read_file'?)"),
])
def test_unknown_names_fail_against_the_catalog(data: dict[str, Any], field: str,
                                                message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JITConfig.parse(data, field="A").bind(_catalog(), field="A")
    assert caught.value.field == field and message in str(caught.value)


def test_methods_of_an_undescribed_entry_point_are_checked_later() -> None:
    policy = JITConfig(tools={"plugin": ToolRule(methods=("anything",))}).bind(_catalog())
    assert policy.allows("plugin", "anything") and not policy.allows("plugin", "other")


def test_toml_file(tmp_path: Path) -> None:
    file = tmp_path / "research_assistant.toml"
    file.write_text('disabled = ["browser"]\nmanifest = "m.json"\n[tools]\nweb_search = true\n'
                    'files = { enabled = true, methods = ["read_file"] }\n', encoding="utf-8")
    config = JITConfig.coerce(str(file), field="A.tool_config")
    assert config.tools["files"] == ToolRule(methods=("read_file",))
    assert config.disabled == ("browser",) and config.manifest == tmp_path / "m.json"


def test_paths_in_a_toml_file_are_relative_to_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "src" / "mytools").mkdir(parents=True)
    (tmp_path / "src" / "mytools" / "__init__.py").write_text("")
    file = tmp_path / "configs" / "agent.toml"
    file.write_text('manifest = "tools.manifest.json"\npython_path = ["../src", "/abs"]\n'
                    'catalog = ["mytools:T"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path / "src")  # the working directory does not matter
    config = JITConfig.from_toml("../configs/agent.toml")
    assert config.manifest == Path("../configs/tools.manifest.json")
    assert config.python_path == (Path("../configs/../src"), Path("/abs"))
    monkeypatch.setattr("sys.path", [p for p in sys.path if p != str(tmp_path / "src")])
    config.add_python_path()
    config.add_python_path()  # once
    assert sys.path.count(str(tmp_path / "src")) == 1 and sys.path[-2] == str(tmp_path / "src")
    # given as a mapping: relative to the working directory, as any path in code
    assert JITConfig.coerce({"manifest": "m.json"}, field="f").manifest == Path("m.json")


def test_toml_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("[tools]\nfiles = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: tools\.files: expected true"):
        JITConfig.from_toml(file)
    file.write_text("[tools\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml: cannot read it"):
        JITConfig.from_toml(file)
    with pytest.raises(ConfigError, match="does not exist"):
        JITConfig.from_toml(tmp_path / "missing.toml")


def test_coerce_rejects_other_types() -> None:
    with pytest.raises(ConfigError, match=r"A\.tool_config: expected a JITConfig"):
        JITConfig.coerce(42, field="A.tool_config")
    assert JITConfig.coerce(None, field="x") == JITConfig()


# Paths built from the characters that matter: both separators, what may start a part
# and what may not, a line break, others, non-ASCII.
_PATHS = st.lists(st.text(alphabet="aZ_9.:\n -/é", max_size=8), max_size=4)


@given(items=_PATHS)
def test_the_import_path_check_is_the_regex(items: list[str]) -> None:
    expected = all(IMPORT_PATH.fullmatch(item) for item in items)
    assert all_import_paths(items) is expected
    assert all_import_paths([*items, "pkg.mod:Cls"]) is expected


@pytest.mark.parametrize("items", [
    [], ["a:B"], ["_a.b1.:C.d"], ["pkg.mod:Cls"] * 1000, ["módulo:Clase"]])
def test_the_import_path_check_accepts(items: list[str]) -> None:
    assert all_import_paths(items)


@pytest.mark.parametrize("items", [
    [""], ["a"], [":B"], ["a:"], ["a:B:C"], ["1a:B"], ["a:.B"], [".a:B"], ["a:B\nc:D"],
    ["a:B", "a:B "], ["a:B", 3], ["a:B", str], ["a/b:C"], ["a:B\n"], ["módulo:1"]])
def test_the_import_path_check_refuses(items: list[object]) -> None:
    assert not all_import_paths(items)
