"""Loads ``package.module:Class`` or ``path/to/file.py:Class`` (the CLI's TARGET)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from ._errors import TargetError
from .agent import Agent

__all__ = ["load_agent_class"]


def load_agent_class(target: str) -> type[Agent]:
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr:
        raise TargetError(f"target {target!r} must look like package.module:AgentClass "
                          "or path/to/file.py:AgentClass")
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part)
        if not path.is_file():
            raise TargetError(f"target file {module_part!r} does not exist")
        # As `python path/to/file.py` would: the file's own directory is importable,
        # so an agent file can import its sibling modules (examples/ does).
        directory = str(path.resolve().parent)
        if directory not in sys.path:
            sys.path.append(directory)
        name = f"agentrt_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise TargetError(f"cannot import {module_part!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise TargetError(f"importing {module_part!r} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise TargetError(f"cannot import module {module_part!r}: {exc}") from exc
    found = getattr(module, attr, None)
    if found is None:
        names = [n for n, v in vars(module).items()
                 if inspect.isclass(v) and issubclass(v, Agent) and v is not Agent]
        hint = f" (agents there: {', '.join(names)})" if names else ""
        raise TargetError(f"{module_part!r} has no attribute {attr!r}{hint}")
    if not (inspect.isclass(found) and issubclass(found, Agent)):
        raise TargetError(f"{target!r} is not an Agent subclass")
    return found
