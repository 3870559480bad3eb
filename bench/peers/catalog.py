"""Workload 4's catalog: N generated tool modules, one search function each.

Each ``fn_NNNN`` module is a tool as a framework-free library would ship it: an async
function with a docstring, the JSON schema a hand-written loop sends (``SCHEMA``), and the
import cost of a real client module (compiled regexes, a decimal table, JSON defaults; the
same recipe as bench/jit.py). Each ``tool_NNNN`` module wraps that function in an agentrt
``Tool`` class, for agentrt eager and JIT (whose manifest is written once, as
``agentrt tools manifest`` would). Every contender imports the same ``fn`` modules, so they
all pay the same import cost per tool; agentrt JIT imports only the ones it activates.
"""

from __future__ import annotations

import compileall
import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workload import TOPICS, function_name, tool_name

if TYPE_CHECKING:
    from collections.abc import Callable

FN_MODULE = '''\
"""Generated tool module {i}: the {topic} service client."""

from __future__ import annotations

import decimal
import json
import re
from typing import Any

_PATTERNS = [re.compile(rf"(?P<key>{topic}{i}_{{j}})\\s*=\\s*(?P<value>\\d+(?:\\.\\d+)?)")
             for j in range(20)]
_RATES = {{f"{topic}-{i}-{{j}}": decimal.Decimal(j) / 7 for j in range(2000)}}
_DEFAULTS = json.loads(json.dumps({{"limit": 10, "fields": [f"f{{j}}" for j in range(50)]}}))

DESCRIPTION = "{description}"


async def {function}(query: str, limit: int = 10,
                     include_archived: bool = False) -> dict[str, Any]:
    """{description}

    Args:
        query: Free-text search terms; quote phrases for exact matches.
        limit: Maximum number of records to return (1-100).
        include_archived: Also search records archived more than a year ago.
    """
    return {{"service": {i}, "query": query, "limit": limit, "hits": []}}


SCHEMA = {{
    "name": "{function}",
    "description": DESCRIPTION,
    "input_schema": {{
        "type": "object",
        "properties": {{
            "query": {{"type": "string", "description":
                      "Free-text search terms; quote phrases for exact matches."}},
            "limit": {{"type": "integer", "default": 10, "description":
                      "Maximum number of records to return (1-100)."}},
            "include_archived": {{"type": "boolean", "default": False, "description":
                                 "Also search records archived more than a year ago."}},
        }},
        "required": ["query"],
    }},
}}
'''

TOOL_MODULE = '''\
"""agentrt wrapper of generated tool module {i}."""

from __future__ import annotations

from typing import Any

from agentrt import Tool, function

from .fn_{i:04d} import {function} as _search


class Tool{i:04d}(Tool):
    """Work with {topic} records (service {i}): search them by relevance."""

    name = "{tool}"

    @function(read_only=True)
    async def {function}(self, query: str, limit: int = 10,
                         include_archived: bool = False) -> dict[str, Any]:
        """{description}

        Args:
            query: Free-text search terms; quote phrases for exact matches.
            limit: Maximum number of records to return (1-100).
            include_archived: Also search records archived more than a year ago.
        """
        return await _search(query, limit, include_archived)
'''

MANIFEST_CHILD = """
import json, sys
from agentrt.jit import describe, render_manifest
from agentrt.jit.catalog import import_tool
paths = json.loads(sys.argv[1])
open(sys.argv[2], "w", encoding="utf-8").write(
    render_manifest(describe(import_tool(p), p) for p in paths))
"""


@dataclass(frozen=True)
class Catalog:
    root: str
    size: int

    @property
    def package(self) -> str:
        return f"w4cat_{self.size}"

    @property
    def manifest(self) -> str:
        return str(Path(self.root) / f"manifest_{self.size}.json")

    def tool_paths(self) -> list[str]:
        return [f"{self.package}.tool_{i:04d}:Tool{i:04d}" for i in range(self.size)]

    def _fn_modules(self) -> list[Any]:
        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        return [importlib.import_module(f"{self.package}.fn_{i:04d}") for i in range(self.size)]

    def functions(self) -> list[Callable[..., Any]]:
        return [getattr(m, function_name(i)) for i, m in enumerate(self._fn_modules())]

    def schemas(self) -> list[dict[str, Any]]:
        return [m.SCHEMA for m in self._fn_modules()]

    def tool_classes(self) -> list[type[Any]]:
        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        classes = []
        for path in self.tool_paths():
            module, _, name = path.partition(":")
            classes.append(getattr(importlib.import_module(module), name))
        return classes


def generate(root: Path, size: int) -> Catalog:
    """Write the modules and the JIT manifest (the manifest in a child: it imports them)."""
    catalog = Catalog(str(root), size)
    package = root / catalog.package
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    for i in range(size):
        topic = TOPICS[i % len(TOPICS)]
        fields = {"i": i, "topic": topic, "function": function_name(i), "tool": tool_name(i),
                  "description": f"Search the {topic} records of service {i} for entries "
                                 "matching a query, ranked by relevance."}
        (package / f"fn_{i:04d}.py").write_text(FN_MODULE.format(**fields), encoding="utf-8")
        (package / f"tool_{i:04d}.py").write_text(TOOL_MODULE.format(**fields), encoding="utf-8")
    compileall.compile_dir(package, quiet=1)  # every contender then loads bytecode
    subprocess.run([sys.executable, "-c", MANIFEST_CHILD, json.dumps(catalog.tool_paths()),
                    catalog.manifest], check=True, env={**os.environ, "PYTHONPATH": str(root)})
    return catalog
