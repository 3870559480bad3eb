from __future__ import annotations

from agentrt import Tool, function


class Browser(Tool):
    """Drive a headless browser (log in, click, fill forms)."""

    name = "browser"

    @function
    async def open_url(self, url: str) -> str:
        """Open a URL in the browser and return the rendered page.

        Args:
            url: The page's address.
        """
        return f"opened {url}"
