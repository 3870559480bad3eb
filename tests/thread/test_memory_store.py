from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from agentrt._errors import StoreError
from agentrt.thread.memory import MemoryThreadStore

from .conformance import ThreadStoreConformance

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class TestMemoryThreadStore(ThreadStoreConformance):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryThreadStore]:
        store = MemoryThreadStore()
        yield store
        await store.aclose()


@pytest.mark.anyio
async def test_async_with_closes_the_store() -> None:
    async with MemoryThreadStore() as store:
        await store.create_thread("t1")
        assert "threads=1" in repr(store)
    with pytest.raises(StoreError, match="closed"):
        await store.get_thread("t1")


@pytest.mark.anyio
async def test_stores_are_independent() -> None:
    a, b = MemoryThreadStore(), MemoryThreadStore()
    await a.create_thread("t1")
    assert await b.get_thread("t1") is None
