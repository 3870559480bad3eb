"""The call key: one function, used by every layer, so equivalent calls meet.

sha256 over the JSON of tool, function, tool version, the scope's identity and the
validated arguments (defaults filled, types normalized by the schema, dict keys
sorted). Identity comes from the run context and the tool's constructor, never from
the model's arguments: it is the security boundary between callers.

JSON here is only hashed, never read back: pydantic-core's serializer (Rust), which
keeps NaN and Infinity distinct from null; a string it cannot encode (a lone
surrogate, which the model can send) goes through the standard library's encoder
with escapes instead, so any input keys and the thread stays usable.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError, to_json

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["call_key", "canonical_json", "key_head", "key_of", "scope_identity",
           "sorted_json_value"]

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode
_escaped = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: surrogates escaped


def canonical_json(value: Any) -> str:
    """Sorted keys, compact separators, no NaN: equal values give equal text."""
    return _dumps(value)


def sorted_json_value(value: Any) -> Any:
    """``value`` with every dict's keys in sorted order (a copy only where needed)."""
    if isinstance(value, dict):
        return {k: sorted_json_value(value[k]) for k in sorted(value)}
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return [sorted_json_value(v) for v in value]
    return value


def scope_identity(*, public: bool, scope: str, identity: Mapping[str, str],
                   thread_id: str, injected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a result may depend on besides its arguments.

    A public function's result depends on its arguments alone: it is shared by every
    caller. Any other result is the caller's: keyed by the run's identity (account,
    tenant, user) and by what was injected into the tool's constructor (an account id,
    say); with no identity at all it is kept within the thread. A ``thread``-scoped
    function is always bound to its thread.
    """
    found: dict[str, Any] = {}
    if not public:
        found.update(identity)
        if injected:
            found["injected"] = dict(injected)
    if scope == "thread" or (not found and not public):
        found["thread"] = thread_id
    return found


def _hashed_json(value: Any) -> bytes:
    try:
        return to_json(value)
    except PydanticSerializationError:
        return _escaped(value).encode()


def key_of(head: bytes, arguments: Mapping[str, Any]) -> str:
    """The key of ``arguments`` (any key order) under ``head`` (:func:`key_head`)."""
    ordered = {k: sorted_json_value(arguments[k]) for k in sorted(arguments)}
    return hashlib.sha256(head + _hashed_json(ordered)).hexdigest()


def key_head(tool: str, function: str, version: str, identity: Mapping[str, Any]) -> bytes:
    """Everything but the arguments: the same for every call of a function in a run."""
    return _hashed_json([tool, function, version, sorted_json_value(dict(identity))]) + b"\n"


def call_key(tool: str, function: str, arguments: Mapping[str, Any], version: str,
             identity: Mapping[str, Any]) -> str:
    """The key of a call of ``tool.function`` with ``arguments`` (any key order)."""
    return key_of(key_head(tool, function, version, identity), arguments)
