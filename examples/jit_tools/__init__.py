"""Tool modules the JIT examples activate on demand (research_assistant, content_creator,
service). None is imported until a thread activates it: the agents know them from
``configs/tools.manifest.json`` (regenerate it with ``agentrt tools manifest --agent
examples/research_assistant.py:ResearchAssistant``).

Their "backends" are simulated in memory, so the examples run offline.
"""
