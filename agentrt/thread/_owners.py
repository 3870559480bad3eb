"""Thread owners: a thread is continued only by the identity that created it.

Without this, a second tenant reusing a thread id (a guess, a leak, a bug in the
application) is answered from the first tenant's history. The owner is the
creating run's identity as canonical JSON (keys sorted, compact), "" for a run
without one; threads created before owners existed have "" too.

A run whose identity is not the owner is refused with ``ThreadOwnerError``,
with one exception the application opts into (``claim_unowned``): a run with an
identity may take a thread owned by "" (a thread from before owners, say),
which then becomes its own, atomically, so two claimants cannot both win.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from .._errors import ThreadChangedError, ThreadOwnerError
from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._messages import ThreadInfo
    from ._store import ThreadStore

__all__ = ["open_thread", "owner_of"]

log = get_logger("agentrt.thread")


def owner_of(identity: Mapping[str, str] | None) -> str:
    """The owner string of ``identity``: canonical JSON, "" for no identity."""
    if not identity:
        return ""
    value = dict(identity)
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the same string, ASCII-escaped
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text


async def open_thread(store: ThreadStore, thread_id: str | None, *,
                      identity: Mapping[str, str] | None,
                      claim_unowned: bool = False) -> ThreadInfo:
    """The thread a run continues (created, owned by ``identity``, if it is new);
    ``ThreadOwnerError`` if it belongs to another identity."""
    owner = owner_of(identity)
    info = await store.create_thread(thread_id, exist_ok=True, owner=owner)
    if info.owner == owner:
        return info
    if claim_unowned and info.owner == "":
        try:
            await store.set_owner(info.id, owner, expected="")
        except ThreadChangedError:  # another identity claimed it first
            raise ThreadOwnerError(info.id) from None
        log.info("thread.owner_claimed", thread_id=info.id)
        return dataclasses.replace(info, owner=owner)
    log.warning("thread.owner_refused", thread_id=info.id)
    raise ThreadOwnerError(info.id)
