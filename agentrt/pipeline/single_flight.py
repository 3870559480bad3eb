"""Single-flight: concurrent identical read-only calls, from any thread of this
process, share one execution (see :class:`SharedExecution` for cancellation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._shared import SharedExecution
from ._stage import Stage
from ._types import ToolOutcome

if TYPE_CHECKING:
    from ._types import CallContext, ToolCall, ToolHandler

__all__ = ["FlightStatistics", "FlightTable", "SingleFlight"]


ABANDONED = ToolOutcome("The shared execution of this call was cancelled; call it again.",
                        is_error=True, source="cancelled", transient=True)


@dataclass(frozen=True, slots=True)
class FlightStatistics:
    """Calls in flight now, and since start the executions led and the calls that joined
    one."""

    in_flight: int
    led: int
    joined: int


class FlightTable:
    """Calls in flight in this process, by key. Entries live exactly as long as the call."""

    def __init__(self) -> None:
        self.flights: dict[str, SharedExecution[ToolOutcome]] = {}
        self.led = 0
        self.joined = 0

    def statistics(self) -> FlightStatistics:
        return FlightStatistics(len(self.flights), self.led, self.joined)


class SingleFlight(Stage):
    """Concurrent identical calls in this process share one execution."""

    name = "single_flight"

    def __init__(self, next_handler: ToolHandler, table: FlightTable) -> None:
        super().__init__(next_handler)
        self.table = table

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        key = call.key
        if key is None or call.options.scope == "turn":
            return await self.next(call, ctx)
        flights = self.table.flights
        flight = flights.get(key)
        telemetry = ctx.telemetry
        if flight is not None:
            self.table.joined += 1
            if telemetry is not None and flight.context is not None:
                telemetry.link_current(flight.context, self.name)  # to the leader's span
            return self.answer(call, ctx, await flight.join())
        flight = flights[key] = SharedExecution(ABANDONED)
        if telemetry is not None:
            flight.context = telemetry.current_span_context()
        self.table.led += 1
        try:
            return await flight.lead(lambda: self.next(call, ctx))
        finally:
            # Dropped only once the leader has the result in hand: the stages above it
            # (the caches) store it before any other task runs, so a caller arriving
            # after this point finds it cached rather than executing again.
            if flights.get(key) is flight:
                del flights[key]

    def statistics(self) -> FlightStatistics:
        """The process-wide table's counters (shared by every agent of the runtime)."""
        return self.table.statistics()
