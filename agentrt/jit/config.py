"""JITConfig: which tools an agent may activate, and which of their functions it may call.

Declared on the agent (``tool_config = {...}`` or a :class:`JITConfig`) or in a
TOML file (``tool_config = "configs/research_assistant.toml"``)::

    catalog = ["myapp.tools.files:Files"]     # more tools, by import path
    python_path = ["../src"]                   # where their modules are, if not installed
    manifest = "tools.manifest.json"           # their definitions, known without importing
    disabled = ["browser"]                     # always refused, whatever else says
    [tools]
    web_search = true
    browser = false
    files = { enabled = true, methods = ["read_file", "list_files"] }
    [function_options.read_file]               # a function's options, as function_options
    ttl = 60
    [mcp.servers.git]                          # an MCP server's tools (agentrt.mcp)
    command = "mcp-server-git"

How the model gets to see a catalog tool is ``tool_loading``:

- ``"deferred"`` (the default): every tool the config allows is in the request
  from the start with ``defer_loading: true`` (its definitions read from the
  manifest, nothing imported). The model does not see them until ``search_tools``
  (our client-side search, tool ``tool_finder``) or ``initialize_tools`` answers with
  ``tool_reference`` blocks naming them, so the tools list, and the prompt cache,
  never change within a thread. With ``search_first = true`` each new user message
  is searched before the model is asked, and its best matches revealed: a task that
  says what it needs costs no search round trip (but the message's words may reveal
  more than the model's own query would: docs/concepts/jit.md has the figures);
- ``"server_search"``: the same, plus the API's tool search tool (``tool_search =
  "regex"`` or ``"bm25"``), with which the model finds tools itself. The search
  shows the tools it finds, so ``initialize_tools`` is not sent unless the config
  enables ``tool_loader`` by name (for the tools' guides);
- ``"append"``: a tool's definitions are appended to the tools list when it is
  activated (for providers or models without deferred loading). Each activation
  changes the start of the prompt, so the cache is rebuilt from there.

In every mode a tool is imported and constructed when first activated, and a tool
the config forbids is never sent, never referenced and never activated.

A config that lists tools is an allow-list: a tool it does not list is refused
(``allow_unlisted = true`` changes that), except the agent's core tools, which
only ``false`` or ``disabled`` turn off. With no ``tools`` table every catalog
tool is allowed except the disabled ones. The shape is checked by pydantic, the
names against the catalog (:meth:`JITConfig.bind`); either failure is a
:class:`ConfigError` at start-up naming the field.

Paths in a TOML file (``manifest``, ``python_path``) are relative to that file, so
an agent finds its manifest and its tools whatever the working directory; in a
config given as a mapping or a JITConfig, to the working directory.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .._errors import ConfigError
from ..mcp._config import HTTPServer, StdioServer, parse_servers
from .catalog import did_you_mean
from .manifest import DEFAULT_MANIFEST

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .catalog import Catalog

__all__ = ["IMPORT_PATH", "FunctionOverride", "JITConfig", "MCPConfig", "ToolLoading",
           "ToolPolicy", "ToolRule", "ToolSearch", "all_import_paths"]

IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
ToolLoading: TypeAlias = Literal["append", "deferred", "server_search"]
ToolSearch: TypeAlias = Literal["regex", "bm25"]


def all_import_paths(items: Sequence[object]) -> bool:
    """Whether every item is a str matching :data:`IMPORT_PATH` (an agent's
    ``tool_catalog`` is checked with it when its class is defined). One pass in C, no
    Python code per item: a thousand paths cost a regex match each and nothing more."""
    try:
        return all(map(IMPORT_PATH.fullmatch, items))  # type: ignore[arg-type]
    except TypeError:  # an item that is not a str (what fullmatch refuses)
        return False


class ToolRule(BaseModel):
    """One ``tools`` entry. ``methods`` (function names) limits what the model may call;
    None allows them all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    methods: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if not isinstance(value, Mapping | ToolRule):
            raise ValueError(f"expected true, false or {{enabled = ..., methods = [...]}}, "
                             f"got {value!r}")
        return value

    @field_validator("methods")
    @classmethod
    def _non_empty_unique(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("must name at least one function; to block the tool "
                                 "use `enabled = false`")
            repeated = sorted({m for m in value if value.count(m) > 1})
            if repeated:
                raise ValueError(f"lists {', '.join(map(repr, repeated))} more than once")
        return value


class FunctionOverride(BaseModel):
    """One ``[function_options.NAME]`` table: what the config changes of a function's
    declared options (the file's form of an agent's ``function_options``, over which it
    takes precedence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read_only: StrictBool | None = None
    ttl: float | None = None
    scope: Literal["turn", "thread", "process", "shared"] | None = None
    public: StrictBool | None = None
    timeout: float | None = None
    error_ttl: float | None = None
    cache_tags: tuple[str, ...] | None = None
    invalidates: tuple[str, ...] | None = None
    requires_approval: StrictBool | None = None
    approval_reason: str | None = None

    def fields(self) -> dict[str, Any]:
        """The options the table sets."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class MCPConfig(BaseModel):
    """``[mcp.servers.NAME]``: MCP servers whose tools join the catalog (agentrt.mcp)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    servers: dict[str, StdioServer | HTTPServer] = {}

    @field_validator("servers", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        return parse_servers(value) if isinstance(value, Mapping) else value


class JITConfig(BaseModel):
    """Permissions and sources of an agent's just-in-time tools. Immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: dict[str, ToolRule] = {}
    disabled: tuple[str, ...] = ()
    catalog: tuple[str, ...] = ()
    allow_unlisted: StrictBool | None = None
    manifest: Path | None = DEFAULT_MANIFEST
    python_path: tuple[Path, ...] = ()
    entry_points: StrictBool = True
    tool_loading: ToolLoading = "deferred"
    tool_search: ToolSearch | None = None  # server_search's variant; unset means regex
    # deferred mode with search_tools: search each new user message before the first
    # request and reveal its best matches (see agentrt.jit.search_tools)
    search_first: StrictBool = False
    mcp: MCPConfig = MCPConfig()
    # per function name: ``[function_options.refund] requires_approval = true``
    function_options: dict[str, FunctionOverride] = {}

    @field_validator("tool_search")
    @classmethod
    def _search_needs_server_search(cls, value: ToolSearch | None,
                                    info: ValidationInfo) -> ToolSearch | None:
        loading = info.data.get("tool_loading", "deferred")
        if value is not None and loading != "server_search":
            raise ValueError(f"applies only with tool_loading = 'server_search' (tool_loading "
                             f"is {loading!r})")
        return value

    @field_validator("catalog")
    @classmethod
    def _import_paths(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not IMPORT_PATH.fullmatch(path):
                raise ValueError(f"{path!r} is not an import path like 'package.module:Class'")
        return value

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> JITConfig:
        """The config in a TOML file; a missing file, a syntax error or a bad field is a
        ``ConfigError`` naming the file (and line and column, or the field)."""
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("file does not exist", field=str(file)) from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read it: {exc}", field=str(file)) from exc
        if isinstance(data.get("manifest"), str):
            data["manifest"] = str(file.parent / data["manifest"])
        if isinstance(data.get("python_path"), list):
            data["python_path"] = [str(file.parent / p) if isinstance(p, str) else p
                                   for p in data["python_path"]]
        return cls.parse(data, field=f"{file}:")

    def add_python_path(self) -> None:
        """Make the catalog's modules importable: each ``python_path`` directory joins
        ``sys.path`` (at its end, once), as a script's own directory does."""
        for directory in self.python_path:
            entry = str(directory.resolve())
            if entry not in sys.path:
                sys.path.append(entry)

    @classmethod
    def parse(cls, data: Any, *, field: str) -> JITConfig:
        """Validate ``data``; a ConfigError names the first bad field under ``field``."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            sep = " " if field.endswith(":") else "."
            message = first["msg"].removeprefix("Value error, ")
            got = first.get("input")
            own = first["type"] == "value_error"  # our validators quote the culprit themselves
            suffix = "" if own or first["type"] == "missing" or isinstance(got, Mapping) else (
                f" (got {got!r})")
            raise ConfigError(message + suffix,
                              field=f"{field}{sep}{where}" if where else field) from exc

    @classmethod
    def coerce(cls, value: object, *, field: str) -> JITConfig:
        """An agent's ``tool_config``: a JITConfig, a mapping, or a TOML file path."""
        if value is None:
            return cls()
        if isinstance(value, JITConfig):
            return value
        if isinstance(value, Mapping):
            return cls.parse(dict(value), field=field)
        if isinstance(value, str | os.PathLike):
            return cls.from_toml(value)
        raise ConfigError(f"expected a JITConfig, a mapping or a TOML file path, got {value!r}",
                          field=field)

    def bind(self, catalog: Catalog, *, field: str = "tool_config") -> ToolPolicy:
        """Check every name against ``catalog`` and precompute the O(1) answers."""
        for index, name in enumerate(self.disabled):
            if name not in catalog:
                raise ConfigError(f"unknown tool {name!r}{did_you_mean(name, catalog.names())}",
                                  field=f"{field}.disabled[{index}]")
        for name, rule in self.tools.items():
            if name not in catalog:
                raise ConfigError(f"unknown tool {name!r}{did_you_mean(name, catalog.names())}",
                                  field=f"{field}.tools.{name}")
            functions = catalog.functions_of(name) if rule.methods is not None else None
            if functions is None:  # all allowed, or unknown until the tool is imported
                continue
            for method in rule.methods or ():
                if method not in functions:
                    raise ConfigError(
                        f"tool {name!r} has no function {method!r}"
                        f"{did_you_mean(method, functions)}",
                        field=f"{field}.tools.{name}.methods")
        blocked = frozenset(self.disabled) | frozenset(
            n for n, r in self.tools.items() if not r.enabled)
        # Core tools are the agent's own: an allow-list of catalog tools need not repeat
        # them (initialize_tools among them); only `false` or `disabled` turns one off.
        core = (name for name in catalog.core_names if name not in blocked)
        listed = frozenset(n for n, r in self.tools.items() if r.enabled) | frozenset(core)
        methods = {n: frozenset(r.methods) for n, r in self.tools.items()
                   if r.enabled and r.methods is not None}
        allow_unlisted = (not self.tools) if self.allow_unlisted is None else self.allow_unlisted
        return ToolPolicy(catalog, listed=listed, blocked=blocked, methods=methods,
                          allow_unlisted=allow_unlisted, disabled=frozenset(self.disabled))


class ToolPolicy:
    """A JITConfig checked against a catalog: every question answered in O(1)."""

    def __init__(self, catalog: Catalog, *, listed: frozenset[str], blocked: frozenset[str],
                 methods: Mapping[str, frozenset[str]], allow_unlisted: bool,
                 disabled: frozenset[str] = frozenset()) -> None:
        self._catalog = catalog
        self._listed = listed
        self._blocked = blocked
        self._disabled = disabled
        self._methods = dict(methods)
        self._allow_unlisted = allow_unlisted

    @property
    def key(self) -> tuple[object, ...]:
        """Equal for policies that answer every question alike (memo keys)."""
        methods = tuple(sorted((k, tuple(sorted(v))) for k, v in self._methods.items()))
        return (self._listed, self._blocked, self._disabled, methods, self._allow_unlisted)

    def may_activate(self, tool: str) -> bool:
        """May ``tool`` be activated: in the catalog, not blocked, and listed (or unlisted
        tools allowed)?"""
        return (tool in self._catalog and tool not in self._blocked
                and (self._allow_unlisted or tool in self._listed))

    def may_call(self, function: str) -> bool:
        """May the model call ``function`` (activating its tool if need be)?"""
        tool = self._catalog.tool_for(function)
        return tool is not None and self.allows(tool, function)

    def allows(self, tool: str, function: str) -> bool:
        """``may_call`` for a function of a known tool (also one the manifest lacks)."""
        if not self.may_activate(tool):
            return False
        methods = self._methods.get(tool)
        return methods is None or function in methods

    def methods(self, tool: str) -> frozenset[str] | None:
        """The functions of ``tool`` the model may call; None means all of them."""
        return self._methods.get(tool)

    def refusal(self, tool: str) -> str | None:
        """Why ``tool`` may not be activated, for the model; None when it may."""
        if tool not in self._catalog:
            return f"there is no tool {tool!r}"
        if tool in self._disabled:
            return f"tool {tool!r} is disabled for this agent"
        if not self.may_activate(tool):
            return f"tool {tool!r} is not enabled for this agent"
        return None
