"""Say once, for a run, which async library runs it.

anyio asks sniffio which library is running at every cancel scope, lock, event and
deadline it makes, and sniffio, unless told, finds asyncio by looking up the current
task each time. One model turn makes dozens of these, the run's own and the SDK's HTTP
stack's. Told once in the run's context (``current_async_library_cvar``, the variable
sniffio reads first, which ``anyio.run`` sets the same way), a turn costs about 1,000
bytecodes fewer (bench/peers/instructions.py; bench/README.md). The value told is the
one sniffio itself found, and it is reset when the run ends, so the caller's context is
left as it was. anyio's worker threads start with it cleared (anyio does that itself).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

sniffio: Any
try:  # installed with the anthropic SDK; without it anyio asks asyncio directly
    import sniffio
except ImportError:  # pragma: no cover
    sniffio = None

__all__ = ["async_library_told"]


@contextmanager
def async_library_told() -> Iterator[None]:
    """Within the block (one task, no ``yield`` across tasks), sniffio answers from its
    context variable. Nothing changes where it is already set."""
    if sniffio is None or sniffio.current_async_library_cvar.get() is not None:
        yield
        return
    token = sniffio.current_async_library_cvar.set(sniffio.current_async_library())
    try:
        yield
    finally:
        sniffio.current_async_library_cvar.reset(token)
