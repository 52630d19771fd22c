"""``python -m stockpot_local.apiserver --port 0 --kubeconfig PATH``: run the API server standalone."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from .server import APIServer


async def _serve(args: argparse.Namespace) -> None:
    server = APIServer(host=args.host, port=args.port, state_dir=args.state_dir)
    await server.start()
    if args.kubeconfig:
        server.write_kubeconfig(args.kubeconfig)
    print(server.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stockpot_local.apiserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="directory holding logs/<ns>/<pod>/<container>.log"
    )
    parser.add_argument("--kubeconfig", type=Path, default=None, help="write a kubeconfig for the server here")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
