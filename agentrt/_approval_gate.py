"""The loop's approval step: which calls of a reply run, and which wait for a person.

A call whose function requires approval is shown to the application's policy first
(``approve`` runs it, ``deny`` answers it as refused, ``ask`` or a policy failure
leaves it to a person); the calls left to a person get no result and make the run
pause. :func:`paused_record` is what the thread keeps of such a turn (see
:mod:`agentrt._approvals` for the record and how a paused turn is settled).
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING

from ._approvals import ApprovalRequest, PausedTurn, PendingCall
from .pipeline._types import ToolOutcome
from .pipeline.processor import PENDING, result_block

if TYPE_CHECKING:
    from ._approvals import ApprovalPolicy, Verdict
    from ._context import RunContext
    from .log import Logger
    from .pipeline._types import ToolCall
    from .pipeline.processor import Screen, TurnOutcomes

__all__ = ["POLICY_DENIED", "ApprovalGate", "paused_record"]

POLICY_DENIED = ToolOutcome("The application's approval policy refused this call; it was "
                            "not run.", is_error=True, source="denied")


class ApprovalGate:
    """Screens one run's calls that require approval: ``policy`` first, then a person,
    who has ``timeout`` seconds to decide."""

    def __init__(self, policy: ApprovalPolicy | None, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout

    def screen(self, run: RunContext, log: Logger, pending: list[PendingCall]) -> Screen:
        """The processor's screen for one reply: calls left to a person land in
        ``pending``."""
        async def screen(call: ToolCall) -> ToolOutcome | None:
            reason = call.options.approval_reason or f"{call.name} requires a person's approval"
            request = ApprovalRequest(call.id, call.name, call.normalized(), reason)
            verdict = await self._verdict(request, run, log)
            if verdict == "approve":
                log.info("approval.policy_approved", call_id=call.id, function=call.name)
                return None
            if verdict == "deny":
                log.info("approval.policy_denied", call_id=call.id, function=call.name)
                return POLICY_DENIED
            pending.append(PendingCall(call.id, call.name, request.input, reason,
                                       time.time() + self.timeout))
            return PENDING

        return screen

    async def _verdict(self, request: ApprovalRequest, run: RunContext,
                       log: Logger) -> Verdict:
        if self.policy is None:
            return "ask"
        try:
            verdict = self.policy(request, run)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception:  # a policy bug never lets a call through: a person decides
            log.warning("approval.policy_failed", function=request.name, exc_info=True)
            return "ask"
        if verdict not in ("approve", "deny", "ask"):
            log.warning("approval.policy_answer_unknown", function=request.name,
                        answer=repr(verdict))
            return "ask"
        return verdict


def paused_record(message_id: str, turn: TurnOutcomes,
                  pending: list[PendingCall]) -> PausedTurn:
    """What a paused turn keeps to go on later: its pending calls, and the results of
    the calls that ran (they join the results message once it is whole)."""
    results = {str(b.get("id")): result_block(str(b.get("id")), o)
               for b, o in zip(turn.blocks, turn.outcomes, strict=True)
               if o is not None and o is not PENDING}
    calls = [{**p.to_json(), "status": "pending"} for p in pending]
    return PausedTurn(message_id, results, calls)
