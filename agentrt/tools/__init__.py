"""Tools: classes whose marked async methods the model can call."""

from ._content import ToolContent, tool_reference
from ._function import CacheScope, FunctionOptions, function
from ._registry import ToolRegistry
from ._schema import FunctionSpec
from ._thread_view import ThreadView
from ._tool import Tool

__all__ = ["CacheScope", "FunctionOptions", "FunctionSpec", "ThreadView", "Tool", "ToolContent",
           "ToolRegistry", "function", "tool_reference"]
