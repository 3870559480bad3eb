from __future__ import annotations

from agentrt import Tool, function


class Publisher(Tool):
    """Publish posts to the company blog and social accounts."""

    name = "publisher"

    @function
    async def publish_post(self, title: str, body: str) -> str:
        """Publish a post, publicly and at once.

        Args:
            title: The post's title.
            body: The post's text (Markdown).
        """
        return f"published {title!r}"
