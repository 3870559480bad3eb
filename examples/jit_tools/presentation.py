from __future__ import annotations

from agentrt import Tool, function


class Presentation(Tool):
    """Build slide decks; decks are saved as files, so it needs the files tool."""

    name = "presentation"
    requires = ("files",)

    def guide(self) -> str:
        return "One idea per slide, at most five bullets. Save sources to a file first."

    @function
    async def make_slides(self, title: str, bullets: list[str]) -> str:
        """Create a slide deck, one slide per bullet.

        Args:
            title: The deck's title.
            bullets: One bullet per slide.
        """
        return f"deck {title!r}: {len(bullets)} slides, saved as decks/{title.lower()}.pptx"
