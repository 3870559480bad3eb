from __future__ import annotations

from agentrt import Tool, function

_PAGES = {
    "https://example.org/heat-pumps": "Heat pumps move heat instead of making it: 3-4 units "
    "of heat per unit of electricity. Sales in Europe doubled between 2020 and 2023.",
    "https://example.org/grid": "Heat pumps shift winter demand onto the grid; utilities "
    "plan for it with time-of-use tariffs.",
}


class WebSearch(Tool):
    """Search the web and read pages."""

    name = "web_search"

    def __init__(self) -> None:
        self.upstream: list[str] = []

    def guide(self) -> str:
        return "Search first, then fetch the pages worth reading. Cite the URLs you use."

    @function(read_only=True, ttl=300, public=True)  # the web is the same for every caller
    async def web_search(self, query: str, limit: int = 3) -> dict[str, object]:
        """Search the web for pages matching a query.

        Args:
            query: What to search for.
            limit: How many results to return.
        """
        self.upstream.append(f"search {query!r}")
        return {"query": query, "results": list(_PAGES)[:limit]}

    @function(read_only=True, ttl=300, public=True)
    async def fetch_page(self, url: str) -> str:
        """Fetch a web page as text.

        Args:
            url: The page's address.
        """
        self.upstream.append(f"GET {url}")
        return _PAGES.get(url, f"(no page at {url})")
