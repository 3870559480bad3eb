"""CatalogCache: what the JIT agents of one Runtime share instead of rebuilding it.

A catalog is immutable once built, and so is a manifest's index once read: every
agent built from the same sources can share them, and rebuilding them per agent
would make each agent's start-up grow with the catalog. The Runtime owns one
cache (:attr:`agentrt.Runtime.catalogs`, made on first use), so what it holds
lives as long as the agents that use it and no longer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .._errors import ConfigError
from .catalog import installed_entry_points, load_catalog, same_places
from .manifest import read_manifest

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from ..tools import Tool
    from .catalog import Catalog
    from .config import JITConfig
    from .manifest import Manifest

__all__ = ["CatalogCache"]

_K = TypeVar("_K")
_V = TypeVar("_V")


class CatalogCache:
    """Manifests by file version, the installed entry points by ``sys.path``, and
    catalogs by their sources. Each keeps the ``limit`` most recent values."""

    def __init__(self, limit: int = 32) -> None:
        self.limit = limit
        self._manifests: dict[tuple[str, int, int], Manifest | None] = {}
        self._entry_points: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
        self._catalogs: dict[Hashable, Catalog] = {}

    def manifest(self, path: str | Path) -> Manifest | None:
        """The manifest at ``path``, read again only when the file changed (its
        modification time or size); None when there is no such file."""
        file = Path(path)
        try:
            stat = file.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read the tool manifest ({exc})", field=str(file)) from exc
        key = (str(file.absolute()), stat.st_mtime_ns, stat.st_size)
        return _remember(self._manifests, key, lambda: _stamped(read_manifest(file), key),
                         self.limit)

    def entry_points(self, manifest: Manifest | None = None) -> tuple[tuple[str, str], ...]:
        """The ``agentrt.tools`` entry points installed on this ``sys.path``: those the
        manifest recorded when the distributions are still where it found them (no scan:
        see :func:`~agentrt.jit.catalog.same_places`), else those a scan finds."""

        def find() -> tuple[tuple[str, str], ...]:
            recorded = manifest.entry_points if manifest is not None else None
            if recorded is not None and same_places(recorded.places):
                return recorded.found
            return installed_entry_points()

        return _remember(self._entry_points, tuple(sys.path), find, 1)

    def catalog(self, config: JITConfig, *, core: Sequence[type[Tool]] = (),
                listed: Sequence[str | type[Tool]] = (),
                manifest: Manifest | bool | None = False) -> Catalog:
        """The catalog of these sources: the agent's core tool classes, its
        ``tool_catalog`` and its config (its ``catalog``, manifest and entry points).
        The config's ``python_path`` joins ``sys.path`` first. ``manifest``: the
        config's, when the caller just had it from :meth:`manifest` (not looked up
        again)."""
        config.add_python_path()
        if isinstance(manifest, bool):
            manifest = self.manifest(config.manifest) if config.manifest else None
        points = self.entry_points(manifest) if config.entry_points else ()
        key = (tuple(core), tuple(listed), config.catalog, manifest, points)
        return _remember(self._catalogs, key, lambda: load_catalog(
            core=core, listed=listed, configured=config.catalog, manifest=manifest,
            entry_points=points), self.limit)


def _stamped(manifest: Manifest | None, key: tuple[str, int, int]) -> Manifest | None:
    if manifest is not None:
        manifest.stamp = key
    return manifest


def _remember(memo: dict[_K, _V], key: _K, build: Callable[[], _V], limit: int) -> _V:
    """``memo[key]``, built when missing; the oldest value goes past ``limit``."""
    if key in memo:
        return memo[key]
    value = memo[key] = build()
    while len(memo) > limit:
        del memo[next(iter(memo))]
    return value
