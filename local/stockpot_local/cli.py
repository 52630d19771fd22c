"""``python -m stockpot_local up|down|status|env``: the local cluster from a shell.

python -m stockpot_local up                 # start in the background, wait until healthy
eval "$(python -m stockpot_local env)"      # KUBECONFIG and AWS_* for kubectl, helm, boto3
python -m stockpot_local status             # exit 0 when every part is healthy
python -m stockpot_local down               # stop everything (idempotent)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from stockpot_local import daemon
from stockpot_local.cluster import prometheus_dir
from stockpot_local.cluster_state import export_lines, status_lines
from stockpot_local.prometheus import PrometheusServer
from stockpot_local.scrape_targets import ScrapeTarget

DEFAULT_STATE_DIR = Path(".local-cluster")
EXIT_UNHEALTHY = 1
EXIT_NOT_RUNNING = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stockpot_local",
        description="Run the local cluster: Kubernetes API, controllers, process kubelet, S3, Prometheus.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the cluster keeps its data, logs and state file (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the cluster in the background and wait until it is healthy")
    start.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus")
    start.add_argument("--foreground", action="store_true", help="run in this process until Ctrl-C/SIGTERM")
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    commands.add_parser("down", help="stop the cluster recorded in the state directory")
    commands.add_parser("status", help="show what runs and whether it answers")
    commands.add_parser("env", help="print `export` lines for eval: KUBECONFIG and the S3 variables")
    scrape = commands.add_parser("scrape", help="have Prometheus scrape HOST:PORT (e.g. the operator's /metrics)")
    scrape.add_argument("address", help="HOST:PORT of a Prometheus metrics endpoint")
    scrape.add_argument("--job", default="stockpot-operator", help="the `job` label (default: %(default)s)")
    scrape.add_argument("--path", default="/metrics", help="the metrics path (default: %(default)s)")
    scrape.add_argument("--remove", action="store_true", help="stop scraping ADDRESS")
    for sub in commands.choices.values():  # accept --state-dir after the command too
        sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    if args.foreground:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        daemon.serve(state_dir, prometheus=not args.no_prometheus)
        return 0
    try:
        state = daemon.up(state_dir, prometheus=not args.no_prometheus, timeout=args.timeout)
    except daemon.DaemonError as error:
        print(f"local cluster failed to start: {error}", file=sys.stderr)
        return EXIT_UNHEALTHY
    print("\n".join(status_lines(state, daemon.health(state))))
    print(f'\nUse it with: eval "$(python -m stockpot_local --state-dir {state_dir} env)"')
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = daemon.down(args.state_dir.resolve())
    print("local cluster stopped" if stopped else "local cluster was not running")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = daemon.running_state(args.state_dir.resolve())
    if state is None:
        print("local cluster is not running")
        return EXIT_NOT_RUNNING
    health = daemon.health(state)
    print("\n".join(status_lines(state, health)))
    return 0 if all(health.values()) else EXIT_UNHEALTHY


def _env(args: argparse.Namespace) -> int:
    state = daemon.running_state(args.state_dir.resolve())
    if state is None:
        print("local cluster is not running; start it with: python -m stockpot_local up", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print("\n".join(export_lines(state.env)))
    return 0


def _scrape(args: argparse.Namespace) -> int:
    prometheus = PrometheusServer(prometheus_dir(args.state_dir.resolve()))
    if args.remove:
        prometheus.remove_static_target(args.address)
    else:
        prometheus.add_static_target(ScrapeTarget(args.address, args.path, {"job": args.job}))
    for target in prometheus.static_targets():
        print(f"{target.labels.get('job', '')}\t{target.address}{target.path}")
    return 0


_COMMANDS = {"up": _up, "down": _down, "status": _status, "env": _env, "scrape": _scrape}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _COMMANDS[args.command](args)
