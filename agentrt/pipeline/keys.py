"""The call key: one function, used by every layer, so equivalent calls meet.

sha256 over canonical JSON of tool, function, validated arguments (defaults filled,
types normalized by the schema), tool version and the scope's identity. Identity
comes from the run context, never from the model's arguments: it is the security
boundary between tenants.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["call_key", "canonical_json", "scope_identity"]

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode


def canonical_json(value: Any) -> str:
    """Sorted keys, compact separators, no NaN: equal values give equal text."""
    return _dumps(value)


def scope_identity(*, public: bool, scope: str, identity: Mapping[str, str],
                   thread_id: str) -> dict[str, str]:
    """What a result may depend on besides its arguments.

    A public function's result is the same for everyone; otherwise the caller's
    identity (account, tenant, user) is part of the key, and a ``thread``-scoped
    function is also bound to its thread.
    """
    found: dict[str, str] = {} if public else dict(identity)
    if scope == "thread":
        found["thread"] = thread_id
    return found


def call_key(tool: str, function: str, arguments: Mapping[str, Any], version: str,
             identity: Mapping[str, str]) -> str:
    payload = canonical_json([tool, function, version, arguments, identity])
    return hashlib.sha256(payload.encode()).hexdigest()
