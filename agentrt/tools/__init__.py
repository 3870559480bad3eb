"""Tools: classes whose marked async methods the model can call."""

from ._function import CacheScope, FunctionOptions, function
from ._registry import ToolRegistry
from ._schema import FunctionSpec
from ._tool import Tool

__all__ = ["CacheScope", "FunctionOptions", "FunctionSpec", "Tool", "ToolRegistry", "function"]
