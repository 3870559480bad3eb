"""Human approval of tool calls: what a paused run waits for, and how it is stored.

A call of a function that ``requires_approval`` is not run: the run stops with
``stop_reason="approval_required"`` and the calls it waits for are kept in the
thread's state (:meth:`ThreadStore.set_state`, a compare-and-set JSON document),
beside the assistant message that asked for them and the results of the calls of
that message that did run. Nothing else is kept in memory, so the pause costs
nothing while it lasts and any process may resume it (``Agent.resume``).

The stored record (``state["approvals"]``)::

    {"v": 1, "message_id": "msg_...",            # the assistant message it belongs to
     "results": {"toolu_1": {tool_result block}},  # calls of that message that ran
     "calls": [{"id", "name", "input", "reason", "expires_at",
                "status": "pending" | "running" | "denied", "note": "..."}]}

``running`` is an approved call whose execution has started: a process that dies
during it leaves it so, and the next run tells the model its outcome is unknown
instead of running it twice. ``state["decided"]`` keeps the last settled record's
decisions (call id -> ``approved`` / ``denied``), so that a repeated or racing
resume is told the call was already decided. ``state["keep_until"]`` (the latest
deadline) keeps a store that expires threads (Redis ``thread_ttl``) from dropping
a thread while calls are pending.

A decision only ever comes from the application (``Agent.resume``, ``Agent.run``'s
``approve``/``deny``), never from model output or tool results; only the thread's
owner (the identity that created it) may decide.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ._errors import ApprovalError, ThreadNotFoundError, ThreadOwnerError
from .thread._owners import owner_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._context import RunContext
    from .thread._messages import Message, ThreadState
    from .thread._store import ThreadStore

__all__ = ["ApprovalPolicy", "ApprovalRequest", "Decision", "PausedTurn", "PendingCall",
           "Verdict", "already_decided", "paused_turn", "pending_calls", "with_record"]

RECORD = "approvals"
DECIDED = "decided"
KEEP_UNTIL = "keep_until"
_VERSION = 1

Verdict: TypeAlias = Literal["approve", "deny", "ask"]
"""What an approval policy answers: run it, refuse it, or ask a person."""

Decision: TypeAlias = Literal["approved", "denied"]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call that requires approval, as a policy sees it: ``input`` is validated
    (defaults filled); ``reason`` is why it requires approval."""

    id: str
    name: str
    input: dict[str, Any]
    reason: str


ApprovalPolicy: TypeAlias = Callable[
    [ApprovalRequest, "RunContext"], "Verdict | Awaitable[Verdict]"]
"""``policy(request, run) -> "approve" | "deny" | "ask"`` (may be async): lets the
application settle routine calls itself (under an amount, say); ``run.identity``
is the caller's. A policy that raises is logged and treated as ``"ask"``."""


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A call waiting for a person: decide it with ``Agent.resume(thread_id,
    approve=[id])`` or ``deny={id: "reason"}`` before ``expires_at`` (epoch seconds);
    after it, it is answered as denied."""

    id: str
    name: str
    input: dict[str, Any]
    reason: str
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        """The call as ``run --json`` and the service show it."""
        return {"id": self.id, "name": self.name, "input": self.input, "reason": self.reason,
                "expires_at": self.expires_at}


@dataclass(slots=True)
class PausedTurn:
    """The stored record of one paused assistant message (see the module docstring)."""

    message_id: str
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"v": _VERSION, "message_id": self.message_id, "results": self.results,
                "calls": self.calls}

    @classmethod
    def from_json(cls, data: Any) -> PausedTurn | None:
        if not isinstance(data, dict) or not isinstance(data.get("message_id"), str):
            return None
        calls = [c for c in data.get("calls") or () if isinstance(c, dict) and "id" in c]
        return cls(data["message_id"], dict(data.get("results") or {}), calls)

    def pending(self) -> list[PendingCall]:
        return [PendingCall(str(c["id"]), str(c.get("name", "")), dict(c.get("input") or {}),
                            str(c.get("reason", "")), float(c.get("expires_at", 0.0)))
                for c in self.calls if c.get("status") == "pending"]

    def keep_until(self) -> float:
        return max((float(c.get("expires_at", 0.0)) for c in self.calls
                    if c.get("status") == "pending"), default=0.0)

    def decide(self, approve: Sequence[str], deny: Mapping[str, str], *, thread_id: str,
               moved_on: bool, now: float | None = None) -> tuple[list[str], list[str]]:
        """Apply the caller's decisions; ``(started, stale)``: the ids approved now (to
        run), and those approved by a run that never finished (outcome unknown).

        Checked before anything changes: every id must be one of this record's calls,
        not both approved and denied, and not decided otherwise before; unless
        ``moved_on`` (a new user message), every live pending call must be decided.
        Expired calls are denied ("no decision in time"), undecided ones when the user
        moved on."""
        now = time.time() if now is None else now
        by_id = {str(c["id"]): c for c in self.calls}
        both = sorted(set(approve) & set(deny))
        if both:
            raise ApprovalError(thread_id, f"calls both approved and denied: {', '.join(both)}")
        given: dict[str, Decision] = {**dict.fromkeys(approve, "approved"),
                                      **dict.fromkeys(deny, "denied")}
        for call_id, decision in given.items():
            call = by_id.get(call_id)
            if call is None:
                raise ApprovalError(thread_id, f"call {call_id!r} is not pending on this "
                                    f"thread{_pending_hint(self)}")
            status = call.get("status")
            earlier: Decision | None = ("approved" if status == "running" else
                                        "denied" if status == "denied" else None)
            if earlier is not None and earlier != decision:
                raise ApprovalError(thread_id, f"call {call_id!r} was already {earlier}")
        live = [c for c in self.calls if c.get("status") == "pending"
                and float(c.get("expires_at", 0.0)) > now]
        undecided = [str(c["id"]) for c in live if str(c["id"]) not in given]
        if undecided and not moved_on:
            raise ApprovalError(thread_id, "every pending call must be approved or denied; "
                                f"undecided: {', '.join(undecided)}")
        stale = [str(c["id"]) for c in self.calls if c.get("status") == "running"]
        started: list[str] = []
        for call in self.calls:
            if call.get("status") != "pending":
                continue
            call_id = str(call["id"])
            if float(call.get("expires_at", 0.0)) <= now:
                call.update(status="denied", note="no decision in time")
            elif given.get(call_id) == "approved":
                call["status"] = "running"
                started.append(call_id)
            elif call_id in deny:
                call.update(status="denied", note=str(deny[call_id]) or "no reason given")
            else:
                call.update(status="denied", note="the user moved on without approving it")
        return started, stale

    def decisions(self) -> dict[str, Decision]:
        return {str(c["id"]): "approved" if c.get("status") == "running" else "denied"
                for c in self.calls if c.get("status") in ("running", "denied")}


def _pending_hint(turn: PausedTurn) -> str:
    ids = [p.id for p in turn.pending()]
    return f" (pending: {', '.join(ids)})" if ids else " (none is pending)"


def paused_turn(state: ThreadState, history: Sequence[Message]) -> PausedTurn | None:
    """The thread's paused turn, if its record belongs to the last stored message (a
    record left behind by a crash after the turn's results were stored is stale)."""
    turn = PausedTurn.from_json(state.data.get(RECORD))
    if turn is None or not history or history[-1].id != turn.message_id:
        return None
    return turn


def already_decided(state: ThreadState, approve: Sequence[str], deny: Mapping[str, str],
                    thread_id: str) -> ApprovalError:
    """The error for decisions given to a thread with no paused turn."""
    decided = state.data.get(DECIDED) or {}
    for call_id in [*approve, *deny]:
        if call_id in decided:
            return ApprovalError(thread_id, f"call {call_id!r} was already {decided[call_id]}; "
                                 "nothing was run again")
    ids = ", ".join([*approve, *deny])
    if ids:
        return ApprovalError(thread_id, f"no call is pending on this thread (given: {ids})")
    return ApprovalError(thread_id, "no call is pending on this thread: nothing to resume")


def with_record(data: Mapping[str, Any], turn: PausedTurn | None,
                decided: Mapping[str, Decision] | None = None) -> dict[str, Any]:
    """The thread state ``data`` with ``turn`` stored (or cleared, keeping ``decided``)."""
    out = {k: v for k, v in data.items() if k not in (RECORD, KEEP_UNTIL)}
    if turn is not None:
        out[RECORD] = turn.to_json()
        out[KEEP_UNTIL] = turn.keep_until()
    if decided is not None:
        out[DECIDED] = dict(decided)
    return out


async def pending_calls(store: ThreadStore, thread_id: str, *,
                        identity: Mapping[str, str] | None = None,
                        check_owner: bool = True) -> list[PendingCall]:
    """The calls of ``thread_id`` waiting for a person and not yet expired (the CLI's
    ``threads show``, a service's ``GET /threads/{id}/pending``). ``ThreadOwnerError``
    unless ``identity`` owns the thread (``check_owner=False``: an operator's view)."""
    info = await store.get_thread(thread_id)
    if info is None:
        raise ThreadNotFoundError(thread_id)
    if check_owner and info.owner != owner_of(identity):
        raise ThreadOwnerError(thread_id)
    turn = paused_turn(await store.get_state(thread_id), await store.messages(thread_id))
    now = time.time()
    return [] if turn is None else [p for p in turn.pending() if p.expires_at > now]
