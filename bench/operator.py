"""FineTune controller throughput and memory on the local cluster (``make bench-operator``).

Method, all in one run on one API server:
1. Raw create rate: 500 ConfigMaps created by the same client setup (8 threads) — the ceiling.
2. The operator (``stockpot operator``, one process) watches a fresh namespace; 500 suspended FineTunes are
   created the same way (suspended, so no pods run). The bench watches Jobs and records when each FineTune's
   Job appears: Jobs per second until the last exists, and create → Job latency (p50/p99).
3. 500 more (1,000 in all); once their Jobs exist and the operator settles, its RSS.
Between the raw creates and the first batch, and after it settles, the API server's own request metrics
(``/metrics``: count and summed handling time per verb and resource) give what one FineTune costs the server —
its creation included — against what one ConfigMap create costs it.
Usage: ``python bench/operator.py [--write docs/benchmarks.md] [--count 500]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config, watch

REPO = Path(__file__).resolve().parents[1]
SECTION = "## FineTune controller (make bench-operator)"
THREADS = 8


def finetune(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "stockpot.dev/v1alpha1",
        "kind": "FineTune",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "s3://models/base"},
            "data": {"train": "s3://datasets/train.jsonl", "format": "chatml"},
            "resources": {"gpus": 0},
            "output": {"uri": "s3://artifacts"},
            "suspend": True,
        },
    }


def create_all(kubeconfig: str, namespace: str, bodies: list[dict[str, Any]], kind: str) -> dict[str, float]:
    """Create every body from THREADS threads; returns name → monotonic time the create returned."""
    local = threading.local()
    done: dict[str, float] = {}

    def one(body: dict[str, Any]) -> None:
        if not hasattr(local, "api"):
            local.api = config.new_client_from_config(kubeconfig)
        if kind == "ConfigMap":
            client.CoreV1Api(local.api).create_namespaced_config_map(namespace, body)
        else:
            client.CustomObjectsApi(local.api).create_namespaced_custom_object(
                "stockpot.dev", "v1alpha1", namespace, "finetunes", body
            )
        done[body["metadata"]["name"]] = time.monotonic()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, bodies))
    return done


def watch_jobs(kubeconfig: str, namespace: str, wanted: int, seen: dict[str, float], stop: threading.Event) -> None:
    api = config.new_client_from_config(kubeconfig)
    batch = client.BatchV1Api(api)
    while not stop.is_set() and len(seen) < wanted:
        for event in watch.Watch().stream(batch.list_namespaced_job, namespace, timeout_seconds=5):
            name = event["object"].metadata.labels.get("stockpot.dev/finetune")
            if name and name not in seen:
                seen[name] = time.monotonic()
            if len(seen) >= wanted or stop.is_set():
                return


def run_batch(kubeconfig: str, namespace: str, names: list[str], seen: dict[str, float]) -> dict[str, float]:
    stop = threading.Event()
    watcher = threading.Thread(target=watch_jobs, args=(kubeconfig, namespace, len(seen) + len(names), seen, stop))
    watcher.start()
    time.sleep(0.5)
    started = time.monotonic()
    created = create_all(kubeconfig, namespace, [finetune(n) for n in names], "FineTune")
    watcher.join(timeout=600)
    stop.set()
    missing = [n for n in names if n not in seen]
    if missing:
        raise RuntimeError(f"{len(missing)} Jobs never appeared, e.g. {missing[:3]}")
    latencies = sorted(seen[n] - created[n] for n in names)
    last = max(seen[n] for n in names)
    return {
        "seconds": last - started,
        "rate": len(names) / (last - started),
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
    }


CLUSTER = """
import sys
from pathlib import Path
from stockpot_local.cluster import LocalCluster
with LocalCluster(Path(sys.argv[1]), s3=False, prometheus=False) as cluster:
    print(cluster.kubeconfig, flush=True)
    sys.stdin.readline()
"""


@contextmanager
def cluster_process(state: str) -> Iterator[str]:
    """The local cluster in its own process (so the bench's client threads do not share its GIL); its kubeconfig."""
    child = subprocess.Popen(
        [sys.executable, "-c", CLUSTER, state], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        yield child.stdout.readline().strip()
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(timeout=60)


Requests = dict[tuple[str, str], tuple[float, float]]  # (verb, resource[/subresource]) -> (count, seconds)


def server_requests(kubeconfig: str) -> Requests:
    """The API server's request counts and summed handling seconds, watches left out (they are long-lived)."""
    import urllib.request

    host = config.new_client_from_config(kubeconfig).configuration.host
    with urllib.request.urlopen(f"{host}/metrics", timeout=30) as response:
        text = response.read().decode()
    out: dict[tuple[str, str], list[float]] = {}
    for line in text.splitlines():
        for metric, slot in (("apiserver_request_total", 0), ("apiserver_request_duration_seconds_sum", 1)):
            if not line.startswith(metric + "{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels["verb"] == "WATCH":
                continue
            resource = labels["resource"] + (f"/{labels['subresource']}" if labels["subresource"] else "")
            out.setdefault((labels["verb"], resource), [0.0, 0.0])[slot] += float(line.rsplit(" ", 1)[1])
    return {key: (value[0], value[1]) for key, value in out.items()}


def difference(after: Requests, before: Requests) -> Requests:
    zero = (0.0, 0.0)
    diff = {k: (v[0] - before.get(k, zero)[0], v[1] - before.get(k, zero)[1]) for k, v in after.items()}
    return {k: v for k, v in diff.items() if v[0] > 0}


def measure(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state, cluster_process(state) as kubeconfig:
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        subprocess.run(
            [str(REPO / ".tools" / "bin" / "kubectl"), "apply", "-f", str(REPO / "crds")],
            env=env,
            check=True,
            capture_output=True,
        )
        core = client.CoreV1Api(config.new_client_from_config(kubeconfig))
        for namespace in ("raw", "bench"):
            core.create_namespace({"metadata": {"name": namespace}})
        before_raw = server_requests(kubeconfig)
        started = time.monotonic()
        create_all(
            kubeconfig,
            "raw",
            [{"metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}} for i in range(count)],
            "ConfigMap",
        )
        raw_rate = count / (time.monotonic() - started)
        raw = difference(server_requests(kubeconfig), before_raw)

        metrics_port = free_port()
        log = (Path(tempfile.gettempdir()) / "stockpot-bench-operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "stockpot_operator.cli", "operator", "--namespace", "bench"],
            env={**env, "STOCKPOT_METRICS_PORT": str(metrics_port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(3)
            seen: dict[str, float] = {}
            before = server_requests(kubeconfig)
            first = run_batch(kubeconfig, "bench", [f"ft-{i}" for i in range(count)], seen)
            time.sleep(5)
            per_finetune = difference(server_requests(kubeconfig), before)
            second = run_batch(kubeconfig, "bench", [f"ft-{i}" for i in range(count, 2 * count)], seen)
            time.sleep(5)
            rss = psutil.Process(operator.pid).memory_info().rss / 1e6
            passes, seconds = reconcile_totals(metrics_port)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            log.close()
            if os.environ.get("SHOW_OPERATOR_OUTPUT"):
                sys.stderr.write(Path(log.name).read_text(errors="replace")[-5000:])
    return {
        "count": count,
        "raw_rate": raw_rate,
        "first": first,
        "second": second,
        "rss_mb": rss,
        "passes": passes,
        "pass_ms": 1000 * seconds / max(passes, 1),
        "raw_seconds": sum(v[1] for v in raw.values()) / count,
        "requests": {k: (v[0] / count, v[1] / count) for k, v in per_finetune.items()},
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reconcile_totals(port: int) -> tuple[int, float]:
    """(reconcile passes, seconds spent in them) from the operator's own /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith(("stockpot_reconcile_seconds_count", "stockpot_reconcile_seconds_sum")):
            name, value = line.rsplit(" ", 1)
            values[name.split("{")[0]] = float(value)
    return int(values.get("stockpot_reconcile_seconds_count", 0)), values.get("stockpot_reconcile_seconds_sum", 0.0)


def report(result: dict[str, Any]) -> str:
    first, count = result["first"], result["count"]
    ratio = first["rate"] / result["raw_rate"]
    requests = result["requests"]
    total = sum(n for n, _ in requests.values())
    busy = sum(t for _, t in requests.values())
    rows = "\n".join(
        f"| {verb} {resource} | {n:.2f} | {1000 * t:.2f} |"
        for (verb, resource), (n, t) in sorted(requests.items(), key=lambda kv: -kv[1][1])
    )
    return f"""{SECTION}

Run on {dt.date.today().isoformat()}, {os.cpu_count()} cores, Python {platform.python_version()}; one operator process
(kopf, 8 workers) against the embedded API server (in its own process, with the controllers and kubelet),
FineTunes created suspended (no pods) from 8 client threads. Each FineTune's first pass creates its
ServiceAccount, run-spec ConfigMap and Job and writes its status; its Job's status change brings one more pass.

| measure | value | goal |
|---|---|---|
| raw create rate of the same API server (ConfigMaps, 8 threads) | {result["raw_rate"]:,.0f} objects/s | — |
| {count} FineTunes → all {count} Jobs exist | {first["seconds"]:.1f} s ({first["rate"]:,.0f} Jobs/s, {ratio:.0%} of the raw rate) | ≥ 50 % |
| create → Job latency, p50 / p99 | {first["p50"]:.2f} s / {first["p99"]:.2f} s | p99 < 2 s |
| next {count} ({2 * count:,} in all) → Jobs | {result["second"]["seconds"]:.1f} s, p99 {result["second"]["p99"]:.2f} s | — |
| operator RSS with {2 * count:,} FineTunes | {result["rss_mb"]:,.0f} MB | < 250 MB |
| reconcile passes for {2 * count:,} FineTunes, mean time per pass | {result["passes"]:,} passes, {result["pass_ms"]:.0f} ms | — |
| API server requests per FineTune (its creation included), handling time | {total:.1f} requests, {1000 * busy:.1f} ms | — |
| API server handling time per raw ConfigMap create | {1000 * result["raw_seconds"]:.2f} ms | — |

What one FineTune costs the API server (its `/metrics`, the first {count}, watches left out), per FineTune:

| verb resource | requests | handling ms |
|---|---|---|
{rows}
"""


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section.rstrip() + "\n" + (text[end:] if end != -1 else "")
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    section = report(measure(args.count))
    print(section)
    if args.write:
        write_section(args.write, section)


if __name__ == "__main__":
    main()
