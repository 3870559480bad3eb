"""The model side of the loop: the ``anthropic`` SDK client (streaming), request building,
the :class:`~agentrt.llm._model.Model` seam the loop talks to, and token usage and limits.

Internal: the public names (``Usage``, ``UsageLimits``) are re-exported by ``agentrt``.
Importing this package imports nothing; the SDK is loaded by the client module only.
"""
