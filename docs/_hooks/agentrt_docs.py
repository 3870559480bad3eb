"""MkDocs hooks of the agentrt site: the pages that are generated, so they cannot drift.

- ``<!-- settings-reference -->`` in a page becomes a section per field of
  :class:`agentrt.Settings` (its TOML key, description, type, default and environment
  variable), read from the model at build time.
- ``<!-- api: MODULE -->`` becomes one mkdocstrings entry (``::: MODULE.NAME``) per name
  of ``MODULE.__all__``, so a name added to a public API appears in the reference
  (``agentrt``'s in sections, by the module that defines each name).
- Sphinx roles left in docstrings (``:class:``) are dropped from the rendered pages.
- Every public name lacking a docstring is a warning, which ``mkdocs build --strict``
  turns into a failed build (see :func:`missing_docstrings`).
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

log = logging.getLogger("mkdocs.plugins.agentrt_docs")

# The public API: agentrt's own names and its public subpackages'.
PUBLIC_MODULES = ("agentrt", "agentrt.pipeline", "agentrt.tools", "agentrt.thread",
                  "agentrt.jit", "agentrt.testing")
# Protocols whose documented methods document their implementations' (the stores' methods).
PROTOCOLS = ("agentrt.thread._store.ThreadStore", "agentrt.jit.guides.GuideCache",
             "agentrt.pipeline._stage.Stage", "agentrt.tools._provider.RunTools",
             "agentrt.tools._provider.ToolProvider")
_API = re.compile(r"^<!-- api: ([\w.]+) -->$", re.MULTILINE)
_SETTINGS = "<!-- settings-reference -->"
# Sphinx roles in docstrings (":class:`~agentrt.RunResult`"), as rendered: the role dropped,
# and a "~" path shortened to its last part, as Sphinx shows it.
_ROLE = re.compile(r":(?:class|func|meth|mod|data|exc|attr|obj):(?=<code>)")
_TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")


def public_names(module: str) -> list[str]:
    """``module.__all__`` without dunders (``__version__``)."""
    return [n for n in importlib.import_module(module).__all__ if not n.startswith("__")]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "").replace("pydantic.types.", "")
    return text.replace("pathlib.", "").replace("NoneType", "None").replace(" | None", "")


def _bounds(info: Any) -> str:
    parts: list[str] = []
    for item in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="),
                           ("min_length", "length >=")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _default(info: Any) -> str:
    default = info.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, int | float):
        return f"`{default}`"
    return f'`"{default}"`'


def settings_reference() -> str:
    """Every setting, from the Settings model itself: a heading (its TOML key, which is
    also its anchor: ``settings.md#thread_wait``), its description, then its type,
    bounds, default and environment variable."""
    from agentrt.settings import Settings

    sections = []
    for name, info in Settings.model_fields.items():
        kind = f"`{_type_name(info.annotation)}`"
        bounds = _bounds(info)
        if bounds:
            kind += f" ({bounds})"
        env = f"`AGENTRT_{name.upper()}`"
        if name == "anthropic_api_key":
            env += " or `ANTHROPIC_API_KEY`"
        sections.append(f"### `{name}` {{#{name}}}\n\n{info.description or ''}\n\n"
                        f"Type {kind} · default {_default(info)} · environment {env}")
    return "\n\n".join(sections)


# agentrt's own page: its names in sections by the module that defines them
# (``agentrt._EXPORTS``); a name from a module not listed here goes under "Other".
_SECTIONS = {
    ".agent": "Agents and runs", ".runtime": "Agents and runs", "._context": "Agents and runs",
    "._result": "Agents and runs", ".llm._usage": "Agents and runs",
    "._events": "Events", ".tools": "Tools", ".jit": "Just-in-time tools",
    ".thread": "Threads", ".thread.memory": "Threads", ".thread.sqlite": "Threads",
    ".settings": "Settings and logging", ".log": "Settings and logging", "._errors": "Errors",
    ".pipeline._types": "Pipeline (extension API)", ".pipeline._stage": "Pipeline (extension API)",
}


def api_entries(module: str) -> str:
    """One mkdocstrings block per public name of ``module``; agentrt's in sections."""
    names = public_names(module)
    if module != "agentrt":
        return "\n\n".join(f"::: {module}.{name}" for name in names)
    exports = importlib.import_module("agentrt")._EXPORTS
    sections: dict[str, list[str]] = {}
    for name in names:
        sections.setdefault(_SECTIONS.get(exports[name], "Other"), []).append(name)
    order = [*dict.fromkeys(_SECTIONS.values()), "Other"]
    return "\n\n".join(
        f"## {title}\n\n" + "\n\n".join(
            f"::: agentrt.{name}\n    options:\n      heading_level: 3"
            for name in sections[title])
        for title in order if title in sections)


def missing_docstrings() -> list[str]:
    """Public names without a docstring, as griffe (what mkdocstrings renders) sees them.

    Checked: every name of each public module's ``__all__`` (functions and classes),
    and every public method of those classes, unless a base class or a protocol it
    implements (:data:`PROTOCOLS`) documents the same method.
    """
    import griffe

    package = griffe.load("agentrt", resolve_aliases=True, resolve_external=False)
    protocols = [package[p.removeprefix("agentrt.")] for p in PROTOCOLS]

    def final(obj: Any) -> Any:
        return obj.final_target if obj.is_alias else obj

    def documented_elsewhere(cls: Any, method: str) -> bool:
        for base in [*cls.mro(), *protocols]:
            member = base.members.get(method)
            if member is not None and final(member).docstring:
                return True
        return False

    missing: list[str] = []
    seen: set[str] = set()  # a class exported twice is checked once
    for module in PUBLIC_MODULES:
        for name in public_names(module):
            target = final(package[f"{module}.{name}".removeprefix("agentrt.")])
            if target.is_attribute:
                continue
            if not target.docstring:
                missing.append(f"{module}.{name}")
            if not target.is_class or target.path in seen:
                continue
            seen.add(target.path)
            for member_name, member in target.members.items():
                if member_name.startswith("_"):
                    continue
                member = final(member)
                if (member.is_function and not member.docstring
                        and not documented_elsewhere(target, member_name)):
                    missing.append(f"{module}.{name}.{member_name}")
    return missing


def on_config(config: Any) -> Any:
    for name in missing_docstrings():
        log.warning("public name without a docstring: %s", name)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if _SETTINGS in markdown:
        markdown = markdown.replace(_SETTINGS, settings_reference())
    return _API.sub(lambda m: api_entries(m[1]), markdown)


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    return _TILDE.sub(r"<code>\1</code>", _ROLE.sub("", html))
