from __future__ import annotations

from agentrt import Tool, function

# The simulated file store: one workspace per thread, for the life of the process.
_WORKSPACES: dict[str, dict[str, str]] = {}


class Files(Tool):
    """Read and write files in this conversation's workspace."""

    name = "files"

    def __init__(self, thread_id: str) -> None:  # injected from the run by name
        self.files = _WORKSPACES.setdefault(thread_id, {})

    @function(read_only=True)
    async def read_file(self, path: str) -> str:
        """Read a file.

        Args:
            path: File path in the workspace.
        """
        return self.files.get(path, f"(no file {path})")

    @function(read_only=True)
    async def list_files(self) -> list[str]:
        """List the workspace's files."""
        return sorted(self.files)

    @function
    async def write_file(self, path: str, text: str) -> str:
        """Write a file, replacing its contents.

        Args:
            path: File path in the workspace.
            text: The new contents.
        """
        self.files[path] = text
        return f"wrote {len(text)} characters to {path}"

    @function
    async def delete_file(self, path: str) -> str:
        """Delete a file.

        Args:
            path: File path in the workspace.
        """
        self.files.pop(path, None)
        return f"deleted {path}"
