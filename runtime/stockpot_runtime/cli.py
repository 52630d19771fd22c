"""``stockpot-runtime``: the one entrypoint of the runtime image.

``stockpot-runtime check <train|export|eval|serve> --spec PATH`` parses a run spec and reports every problem;
the run commands themselves register here as they are built.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stockpot_runtime.spec import SPEC_PATH, EvalRun, ExportRun, RootSpec, RunSpecError, ServeRun, TrainRun, load_run

RUN_KINDS: dict[str, type[RootSpec]] = {
    "train": TrainRun,
    "export": ExportRun,
    "eval": EvalRun,
    "serve": ServeRun,
}


def _check(args: argparse.Namespace) -> int:
    try:
        load_run(RUN_KINDS[args.kind], args.spec)
    except RunSpecError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"{args.spec}: a valid {args.kind} run spec")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="stockpot-runtime", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a run spec without running it")
    check.add_argument("kind", choices=sorted(RUN_KINDS))
    check.add_argument("--spec", default=SPEC_PATH, help=f"run spec path (default {SPEC_PATH})")
    check.set_defaults(run=_check)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
