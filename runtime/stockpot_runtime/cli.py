"""``stockpot-runtime``: the one entrypoint of the runtime image.

``stockpot-runtime check <train|export|eval|serve> --spec PATH`` parses a run spec and reports every problem;
``stockpot-runtime train --spec PATH`` fine-tunes (relaunching itself under torchrun when the run spans more
than one process, and once at the start to run under tcmalloc: ``allocator``); ``stockpot-runtime toy --model URI --data URI`` publishes the offline toy model and synthetic
rows. Every run command ends with a one-line JSON summary on stdout and in the termination log; exit 0 on
success, 143 after a SIGTERM checkpoint (the Job retries and the run resumes), 2 for an invalid spec, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence

from stockpot_runtime import allocator
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


EXIT_PREEMPTED = 143


def _train(args: argparse.Namespace) -> int:
    from stockpot_runtime.storage.progress import write_termination_message
    from stockpot_runtime.train import distributed

    try:
        run = load_run(TrainRun, args.spec)
    except RunSpecError as error:
        print(error, file=sys.stderr)
        write_termination_message({"result": "Invalid", "message": str(error)})
        return 2
    try:
        allocator.reexec_with_tcmalloc(["train", "--spec", str(args.spec)])
    except ValueError as error:
        print(error, file=sys.stderr)
        write_termination_message({"result": "Invalid", "message": str(error)})
        return 2
    topology = distributed.Topology.from_env(os.environ, run.world)
    if topology.size > 1 and not distributed.is_launched_child(os.environ):
        command = distributed.torchrun_command(topology, ["train", "--spec", str(args.spec)])
        logging.getLogger("stockpot_runtime").info(
            "torchrun: node %d of %d, %d process(es) here, master %s:%d",
            topology.node_rank,
            topology.nodes,
            topology.procs_per_node,
            topology.master_addr,
            topology.master_port,
        )
        return subprocess.call(command)
    return _train_here(run)


def _train_here(run: TrainRun) -> int:
    from stockpot_runtime.storage.progress import write_termination_message
    from stockpot_runtime.train.loop import Preempted
    from stockpot_runtime.train.run import train

    rank = int(os.environ.get("RANK", "0"))
    logging.getLogger("stockpot_runtime").info("memory allocator: %s", allocator.in_use())
    try:
        summary = train(run).to_json()
    except Preempted as stop:
        summary = {"result": "Preempted", "step": stop.step, "checkpointed": stop.checkpointed}
        code = EXIT_PREEMPTED
    except Exception as error:  # the message reaches the FineTune's status; the traceback stays in the log
        logging.getLogger("stockpot_runtime").exception("training failed")
        summary, code = {"result": "Failed", "reason": type(error).__name__, "message": str(error)}, 1
    else:
        code = 0
    if rank == 0:
        print(json.dumps(summary))
        write_termination_message(summary)
    return code


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
    train = commands.add_parser("train", help="fine-tune a model as the run spec says")
    train.add_argument("--spec", default=SPEC_PATH, help=f"run spec path (default {SPEC_PATH})")
    train.set_defaults(run=_train)
    toy = commands.add_parser("toy", help="publish the offline toy model and a synthetic dataset (demos, tests)")
    toy.add_argument("--model", required=True, help="artifact location for the model, e.g. s3://models/toy")
    toy.add_argument("--data", required=True, help="a .jsonl location for the rows, e.g. s3://datasets/add.jsonl")
    toy.add_argument("--task", default="add", choices=["recall", "reverse", "add"])
    toy.add_argument("--rows", type=int, default=2000)
    toy.add_argument("--seed", type=int, default=0)
    toy.set_defaults(run=_toy)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("STOCKPOT_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
