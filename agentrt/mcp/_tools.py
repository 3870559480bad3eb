"""An MCP server's tools as one catalog :class:`~agentrt.Tool`, built from its manifest entry.

Nothing here starts the server, nor imports the ``mcp`` package: the class is built
from what ``agentrt tools manifest`` recorded (names, descriptions, input schemas,
annotations), or from the live list a started server reported, so the server's tools
are in the catalog, under the allow-list, deferred or listed like any Tool's functions,
and the server is started by the first call of one of them. A class belongs to no
runtime (it is built once per process for a server's configuration and entry: see
:mod:`._catalog`); an instance calls through the connections of the runtime it is
constructed with.

The annotations decide each function's :class:`~agentrt.FunctionOptions` (see
:func:`options_for`): the rest of the pipeline needs nothing MCP-specific.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .._errors import ToolError
from ..tools import FunctionOptions, FunctionSpec, Tool
from ..tools._content import ToolContent
from ._config import MCPServer, ToolOverride, server_tag

if TYPE_CHECKING:
    from .._context import RunContext
    from ..runtime import Runtime
    from ._session import MCPServers

__all__ = ["MCPTool", "build_tool_class", "options_for", "to_content"]

_RUN = "_agentrt_run"  # the context parameter of every MCP function (see Execute)


class _Arguments(BaseModel):
    """The model's input as it came: the server validates it against its own schema."""

    model_config = ConfigDict(extra="allow")


def options_for(server_name: str, server: MCPServer, tool: str, function: str,
                description: str, annotations: Mapping[str, Any]) -> FunctionOptions:
    """``readOnlyHint: true`` (trusted) is a read-only function with a short TTL, cached
    under the server's tag; anything else is a side effect invalidating that tag. The
    server's ``tools.NAME`` table overrides either."""
    override = server.tools.get(tool) or ToolOverride()
    hinted = server.trust_annotations and annotations.get("readOnlyHint") is True
    read_only = hinted if override.read_only is None else override.read_only
    tag = server_tag(server_name)
    if read_only:
        return FunctionOptions(
            name=function, description=description, read_only=True,
            ttl=override.ttl or server.read_ttl, public=server.public,
            cache_tags=(tag,) if override.cache_tags is None else override.cache_tags,
            timeout=override.timeout, requires_approval=bool(override.requires_approval),
            approval_reason=_APPROVAL_REASON if override.requires_approval else None)
    destructive = server.approve_destructive and annotations.get("destructiveHint") is True
    approval = destructive if override.requires_approval is None else override.requires_approval
    return FunctionOptions(
        name=function, description=description, read_only=False,
        invalidates=(tag,) if override.invalidates is None else override.invalidates,
        timeout=override.timeout, requires_approval=approval,
        approval_reason=(_DESTRUCTIVE_REASON if destructive else _APPROVAL_REASON)
        if approval else None)


_DESTRUCTIVE_REASON = "the MCP server marks this tool destructive"
_APPROVAL_REASON = "the configuration asks a person to approve this tool's calls"


def to_content(result: Any, server_name: str, tool: str) -> ToolContent:
    """A ``CallToolResult`` as tool_result blocks (text, images; embedded text resources
    as text; ``structuredContent`` as JSON when no content carries it). ``isError``
    raises ToolError: an error result the model reads, never cached."""
    blocks: list[dict[str, Any]] = []
    for item in result.content or ():
        kind = getattr(item, "type", None)
        if kind == "text":
            blocks.append({"type": "text", "text": item.text})
        elif kind == "image":
            blocks.append({"type": "image", "source": {
                "type": "base64", "media_type": item.mime_type, "data": item.data}})
        elif kind == "resource":
            resource = item.resource
            text = getattr(resource, "text", None)
            kind_of = getattr(resource, "mime_type", None) or "binary"
            blocks.append({"type": "text", "text": text if isinstance(text, str) else
                           f"[resource {resource.uri}: {kind_of} content not shown]"})
        elif kind == "resource_link":
            blocks.append({"type": "text", "text": f"[resource link: {item.uri}]"})
        else:
            blocks.append({"type": "text", "text": f"[{kind} content not shown]"})
    if not blocks and result.structured_content is not None:
        blocks.append({"type": "text", "text": json.dumps(result.structured_content,
                                                           ensure_ascii=False)})
    content = ToolContent(*blocks)
    if result.is_error:
        raise ToolError(content.text or f"MCP tool {tool!r} of server {server_name!r} failed")
    return content


class MCPTool(Tool):
    """The base of every MCP server's tool class (one class per server configuration
    and tool list, shared by the runtimes of a process)."""

    name = "mcp"
    server_name: ClassVar[str] = ""
    server: ClassVar[MCPServer]
    entry: ClassVar[Mapping[str, Any]] = {}  # what the class was built from
    key: ClassVar[tuple[str, str, str]] = ("", "", "")  # see agentrt.mcp._catalog
    remote_names: ClassVar[Mapping[str, str]] = {}  # function name -> the server's tool name
    annotations: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # by function name

    def __init__(self, runtime: Runtime | None = None) -> None:
        """``runtime``: whose connections the calls go through (the JIT loader gives
        the agent's)."""
        self.servers: MCPServers | None = runtime.mcp if runtime is not None else None

    @classmethod
    def destructive(cls, function: str) -> bool:
        """An explicit ``destructiveHint: true`` (the spec's default for a tool without
        annotations does not count): what an approval step asks about."""
        return cls.annotations.get(function, {}).get("destructiveHint") is True

    async def call(self, function: str, arguments: dict[str, Any], run: RunContext) -> Any:
        if self.servers is None:
            raise ToolError(f"the tools of MCP server {self.server_name!r} were constructed "
                            "without a runtime: construct them with one")
        connection = self.servers.connection(self.server_name, self.server, run.identity,
                                             type(self))
        result = await connection.call(self.remote_names[function], arguments)
        return to_content(result, self.server_name, self.remote_names[function])

    def __getattr__(self, attr: str) -> Any:
        """``_mcp_NAME``: the method the pipeline's Execute calls for the function NAME
        (made when called, not when the class is built: a server has dozens of tools)."""
        function = attr.removeprefix(_METHOD)
        if attr == function or function not in self.remote_names:
            raise AttributeError(attr)

        async def call(_agentrt_run: RunContext, **arguments: Any) -> Any:
            return await self.call(function, arguments, _agentrt_run)

        return call


_METHOD = "_mcp_"


def build_tool_class(server_name: str, server: MCPServer,
                     entry: Mapping[str, Any]) -> type[MCPTool]:
    """The class of a server's tools from its manifest entry (``describe_server``'s)
    or its live one."""
    functions: dict[str, FunctionSpec] = {}
    remote: dict[str, str] = {}
    annotations: dict[str, Mapping[str, Any]] = {}
    for fn in entry["functions"]:
        definition = fn["definition"]
        tool = str(definition["name"])
        function = f"{server.prefix}{tool}"
        description = str(definition.get("description") or f"{tool} ({server_name})")
        hints = dict(fn.get("annotations") or {})
        options = options_for(server_name, server, tool, function, description, hints)
        schema = dict(definition.get("input_schema") or {"type": "object"})
        schema.setdefault("properties", {})
        method = f"{_METHOD}{function}"
        functions[function] = FunctionSpec(
            name=function, tool_name=server_name, method_name=method, description=description,
            options=options, input_model=_Arguments, input_schema=schema, context_param=_RUN)
        remote[function] = tool
        annotations[function] = hints
    namespace: dict[str, Any] = {
        "name": server_name, "version": f"{server.digest(server_name)}:{entry.get('version', '')}",
        "server_name": server_name, "server": server, "entry": entry,
        "remote_names": remote, "annotations": annotations, "__doc__": entry.get("summary") or
        f"Tools of the MCP server {server_name!r}.", "__module__": "agentrt.mcp",
        "__qualname__": f"servers.{server_name}"}
    cls: type[MCPTool] = type(f"MCPTool_{server_name}", (MCPTool,), namespace)
    cls._functions = MappingProxyType(functions)
    return cls
