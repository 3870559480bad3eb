from __future__ import annotations

from agentrt import Tool, function


class Images(Tool):
    """Generate illustrations from a text prompt."""

    name = "images"

    @function
    async def generate_image(self, prompt: str, style: str = "flat illustration") -> str:
        """Generate an image and return its URL.

        Args:
            prompt: What the image shows.
            style: The visual style.
        """
        slug = "-".join(prompt.lower().split())[:40]
        return f"https://images.example.org/{slug}.png ({style})"
