"""Just-in-time tools: an agent starts with its core tools and loads the rest on demand.

The modules, each importing only those listed before it:

- ``dependencies``: tools' ``requires``, checked for cycles, and the order they load in;
- ``manifest``: the file ``agentrt tools manifest`` writes, a small index read whole
  at start-up and each tool's definitions read when needed;
- ``catalog``: every tool an agent may load, known without importing it;
- ``config``: JITConfig, what may be activated and called, and ToolPolicy, a config
  checked against a catalog;
- ``cache``: CatalogCache, the manifests and catalogs a Runtime's agents share;
- ``detector``: constructor arguments, from the run, the runtime and ``deps``;
- ``guides`` (and ``redis_guides``): the usage text of a tool, and its cache;
- ``initialize_tools``: the tool through which the model activates others;
- ``search``: SearchIndex, the BM25 ranking behind ``search_tools``;
- ``search_tools``: ToolFinder, deferred mode's client-side tool search;
- ``agent_tools``: what every run of one agent shares (catalog, policy, the class
  importer, the deferred definitions), built once;
- ``thread_tools``: ThreadTools, one run's active tools and activations;
- ``loader``: JITLoader, the agent's ToolProvider, which builds the two above;
- ``_agent``: ``build_loader``, from an agent's declared values to its loader.
"""

from . import _agent as _agent  # loaded with the package: the first agent pays no import
from .agent_tools import SEARCH_TOOLS, AgentTools, DeferredTools
from .cache import CatalogCache
from .catalog import ENTRY_POINT_GROUP, Catalog, CatalogEntry, load_catalog
from .config import JITConfig, ToolLoading, ToolPolicy, ToolRule, ToolSearch
from .dependencies import DependencyGraph, LoadPlan
from .detector import ParameterDetector, Provided, RuntimeSources
from .guides import GuideCache, GuideCacheStatistics, MemoryGuideCache, render_guide
from .initialize_tools import INITIALIZE_TOOLS, ActivationReport, ToolLoader
from .loader import JITLoader
from .manifest import DEFAULT_MANIFEST, Manifest, describe, read_manifest, render_manifest
from .search import SearchIndex
from .search_tools import ToolFinder
from .thread_tools import JITStatistics, ThreadTools

__all__ = [
    "DEFAULT_MANIFEST",
    "ENTRY_POINT_GROUP",
    "INITIALIZE_TOOLS",
    "SEARCH_TOOLS",
    "ActivationReport",
    "AgentTools",
    "Catalog",
    "CatalogCache",
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
    "SearchIndex",
    "ThreadTools",
    "ToolFinder",
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
