"""Just-in-time tools: an agent starts with its core tools and loads the rest on demand.

``config`` (JITConfig: what may be activated and called), ``catalog`` and
``manifest`` (every tool known without importing it), ``dependencies`` (closure
and load order), ``detector`` (constructor arguments), ``thread_tools`` and
``loader`` (activation per thread), ``guides`` (usage text and its cache),
``core`` (the ``initialize_tools`` function).
"""

from . import _agent as _agent  # loaded with the package: the first agent pays no import
from .catalog import ENTRY_POINT_GROUP, Catalog, CatalogEntry, load_catalog
from .config import JITConfig, ToolLoading, ToolPolicy, ToolRule, ToolSearch
from .core import INITIALIZE_TOOLS, ToolLoader
from .dependencies import DependencyGraph, LoadPlan
from .detector import ParameterDetector, Provided, RuntimeSources
from .guides import GuideCache, GuideCacheStatistics, MemoryGuideCache, render_guide
from .loader import SEARCH_TOOLS, DeferredTools, JITLoader, JITStatistics
from .manifest import DEFAULT_MANIFEST, Manifest, describe, read_manifest, render_manifest
from .thread_tools import ActivationReport, ThreadTools

__all__ = [
    "DEFAULT_MANIFEST",
    "ENTRY_POINT_GROUP",
    "INITIALIZE_TOOLS",
    "SEARCH_TOOLS",
    "ActivationReport",
    "Catalog",
    "CatalogEntry",
    "DeferredTools",
    "DependencyGraph",
    "GuideCache",
    "GuideCacheStatistics",
    "JITConfig",
    "JITLoader",
    "JITStatistics",
    "LoadPlan",
    "Manifest",
    "MemoryGuideCache",
    "ParameterDetector",
    "Provided",
    "RuntimeSources",
    "ThreadTools",
    "ToolLoader",
    "ToolLoading",
    "ToolPolicy",
    "ToolRule",
    "ToolSearch",
    "describe",
    "load_catalog",
    "read_manifest",
    "render_guide",
    "render_manifest",
]
