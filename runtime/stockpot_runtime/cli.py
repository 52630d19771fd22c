"""``stockpot-runtime``: the one entrypoint of the runtime image.

``stockpot-runtime check <train|export|eval|serve> --spec PATH`` parses a run spec and reports every problem;
``stockpot-runtime toy --model URI --data URI`` publishes the offline toy model and synthetic rows. The run
commands themselves register here as they are built.
"""

from __future__ import annotations

import argparse
import json
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


def _toy(args: argparse.Namespace) -> int:
    from stockpot_runtime.toy.publish import publish
    from stockpot_runtime.toy.tasks import Task

    published = publish(args.model, args.data, Task(args.task), args.rows, args.seed)
    summary = {
        "model": published.model.uri,
        "manifestSha256": published.model.manifest_sha256,
        "data": published.data_uri,
        "dataDigest": published.data_digest,
        "rows": published.rows,
    }
    print(json.dumps(summary))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="stockpot-runtime", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a run spec without running it")
    check.add_argument("kind", choices=sorted(RUN_KINDS))
    check.add_argument("--spec", default=SPEC_PATH, help=f"run spec path (default {SPEC_PATH})")
    check.set_defaults(run=_check)
    toy = commands.add_parser("toy", help="publish the offline toy model and a synthetic dataset (demos, tests)")
    toy.add_argument("--model", required=True, help="artifact location for the model, e.g. s3://models/toy")
    toy.add_argument("--data", required=True, help="a .jsonl location for the rows, e.g. s3://datasets/add.jsonl")
    toy.add_argument("--task", default="add", choices=["recall", "reverse", "add"])
    toy.add_argument("--rows", type=int, default=2000)
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(run=_toy)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
