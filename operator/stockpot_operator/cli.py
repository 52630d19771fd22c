"""``stockpot``: the operator-side command line.

- ``stockpot crds [--out DIR] [--check]`` writes (or checks) the generated CRD YAML.
- ``stockpot validate FILE…`` checks resources against the models, printing every error with its field.
- ``stockpot local …`` manages the embedded local cluster (runs ``python -m stockpot_local``).
- ``stockpot operator [--namespace NS …]`` runs the operator (kopf) against the cluster in KUBECONFIG or in-cluster.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from stockpot_operator.api import DocumentError, parse_spec
from stockpot_operator.crdgen import reference_is_stale, stale_files, write_all, write_reference


def _crds(args: argparse.Namespace) -> int:
    out = Path(args.out)
    reference = Path(args.reference) if args.reference else None
    if args.check:
        stale = [str(out / name) for name in stale_files(out)]
        if reference is not None and reference_is_stale(reference):
            stale.append(str(reference))
        for name in stale:
            print(f"stale: {name} (run `make crds`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(out):
        print(path)
    if reference is not None:
        print(write_reference(reference))
    return 0


def _validate(args: argparse.Namespace) -> int:
    failures = 0
    for file in args.files:
        for document in yaml.safe_load_all(Path(file).read_text(encoding="utf-8")):
            if not document:
                continue
            try:
                parse_spec(document)
            except DocumentError as error:
                failures += 1
                print(f"{file}: {error.kind} {error.name!r} is invalid:", file=sys.stderr)
                for field_error in error.errors:
                    print(f"  {field_error}", file=sys.stderr)
            else:
                print(f"{file}: {document['kind']} {document['metadata']['name']!r} is valid")
    return 1 if failures else 0


def _local(rest: Sequence[str]) -> int:
    # The local cluster is its own package and runs as its own process (import contracts keep them apart).
    os.execv(sys.executable, [sys.executable, "-m", "stockpot_local", *rest])


def _operator(args: argparse.Namespace) -> int:
    import kopf

    # Importing a module registers its kopf handlers; the webhook's only when it is served (kopf refuses
    # admission handlers without a webhook server).
    modules = ["stockpot_operator.wiring", "stockpot_operator.handlers.finetune"]
    if os.environ.get("STOCKPOT_WEBHOOK_PORT"):
        modules.append("stockpot_operator.handlers.admission")
    for module in modules:
        importlib.import_module(module)

    kopf.configure(verbose=args.verbose)
    kopf.run(standalone=True, namespaces=args.namespace or (), clusterwide=not args.namespace)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="stockpot", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    crds = commands.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--out", default="crds", help="directory (default: crds)")
    crds.add_argument("--check", action="store_true", help="exit 1 if the files in --out are not current")
    crds.add_argument("--reference", help="also write (or check) the markdown API reference at this path")
    crds.set_defaults(run=_crds)
    validate = commands.add_parser("validate", help="validate resource YAML files against the API models")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(run=_validate)
    operator = commands.add_parser("operator", help="run the operator (watches the stockpot.dev resources)")
    operator.add_argument("--namespace", action="append", help="watch this namespace (repeatable); default: all")
    operator.add_argument("--verbose", action="store_true", help="log every handler call")
    operator.set_defaults(run=_operator)
    commands.add_parser("local", help="the embedded local cluster: up, down, status, env (see `stockpot local -h`)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["local"]:  # everything after `local` belongs to the local cluster's own CLI
        return _local(arguments[1:])
    args = parser().parse_args(arguments)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
