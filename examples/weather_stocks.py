"""Weather and stocks: the same call twice in one message runs once (turn dedup).

The scripted model (``REPLIES`` below) answers "pack for Paris and
check my AAPL position" with one message of four tool calls: the weather in Paris
twice and the AAPL quote twice, as models do when a plan touches one fact from two
angles. The ``turn_dedup`` stage runs each distinct call once and hands its result to
the duplicate; the upstream calls printed at the end show two requests, not four.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/weather_stocks.py

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import anyio

from agentrt import Agent, Tool, function
from agentrt.testing import runtime_or_replay, show_run

TASK = ("I fly to Paris tomorrow: what should I pack? And should I worry about my AAPL "
        "position before I go?")

_WEATHER = {"Paris": {"city": "Paris", "sky": "light rain", "high_c": 14, "low_c": 8}}
_QUOTES = {"AAPL": {"symbol": "AAPL", "price": 231.4, "change_pct": -0.6}}


class Markets(Tool):
    """Weather and market data from two slow upstream APIs, simulated and recorded."""

    name = "markets"

    def __init__(self) -> None:
        self.upstream: list[str] = []

    @function(read_only=True, ttl=600, public=True)
    async def get_weather(self, city: str) -> dict[str, object]:
        """Tomorrow's forecast for a city.

        Args:
            city: City name, like "Paris".
        """
        self.upstream.append(f"GET /weather?city={city}")
        await anyio.sleep(0.05)
        return _WEATHER.get(city, {"city": city, "sky": "unknown"})

    @function(read_only=True, ttl=15, public=True)
    async def get_quote(self, symbol: str) -> dict[str, object]:
        """The latest price of a stock.

        Args:
            symbol: Ticker symbol, like "AAPL".
        """
        self.upstream.append(f"GET /quotes/{symbol}")
        await anyio.sleep(0.05)
        return _QUOTES.get(symbol, {"symbol": symbol, "error": "unknown symbol"})


class TravelAgent(Agent):
    system = "You help travellers with the weather and their stock portfolio. Be brief."
    tools = (Markets,)
    max_iterations = 5


async def main() -> None:
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        agent = TravelAgent(runtime)
        result = await show_run(agent, TASK)
        upstream = agent.registry.tool("markets").upstream
    print(f"\n{result.stats.tool_calls} tool calls in one message, {len(upstream)} upstream "
          f"calls: {', '.join(upstream)}")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Let me check the forecast for Paris and your AAPL quote.",
     "tool_calls": [{"name": "get_weather", "input": {"city": "Paris"}},
                    {"name": "get_quote", "input": {"symbol": "AAPL"}},
                    {"name": "get_weather", "input": {"city": "Paris"}},
                    {"name": "get_quote", "input": {"symbol": "AAPL"}}]},
    {"text": "Paris tomorrow: light rain, 8-14 °C, so pack a raincoat and a warm layer. AAPL "
             "is at $231.40, down 0.6% today: an ordinary move, nothing to act on before your "
             "trip."},
]


if __name__ == "__main__":
    anyio.run(main)
