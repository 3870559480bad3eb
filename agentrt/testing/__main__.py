"""`python -m agentrt.testing --replay FILE`: the fake server as its own process.

For examples and cross-process tests that need a Messages API but no test harness: the single
ready line on stdout carries the URL, so a parent process knows when and where to connect.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

import anyio

from ._script import Script
from ._server import FakeAnthropicServer

if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agentrt.testing", description="Serve a fake Anthropic Messages API."
    )
    parser.add_argument("--replay", required=True, metavar="FILE", help="JSON replay file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--min-cache-tokens", type=int, default=1024, metavar="N")
    args = parser.parse_args(argv)
    try:
        script = Script.load(args.replay)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"agentrt.testing: bad replay file {args.replay}: {exc}\n")
        return 2
    server = FakeAnthropicServer(
        script,
        host=args.host,
        port=args.port,
        latency=args.latency,
        min_cache_tokens=args.min_cache_tokens,
    )
    anyio.run(_serve, server)
    return 0


async def _serve(server: FakeAnthropicServer) -> None:
    # Handlers go in before the ready line, so a parent may signal as soon as it reads it.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            sys.stdout.write(f"AGENTRT_FAKE_BASE_URL={server.base_url}\n")
            sys.stdout.flush()
            async for _ in signals:
                return


if __name__ == "__main__":
    raise SystemExit(main())
