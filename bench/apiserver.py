"""Benchmark of the embedded Kubernetes API server (a script, not a test).

Starts ``python -m stockpot_local.apiserver`` as a subprocess and measures, over HTTP:
create and get throughput (objects/s), watch event delivery latency (p50/p99, from the start of the
create request to the event's arrival on an open watch), the server's RSS when idle and after load, and the
throughput of status merge patches on FineTunes (the repo's CRD from crds/, whose schema carries CEL rules),
each patch changing one status field of an object whose status is already set.
Prints a markdown table.  Usage: ``python bench/apiserver.py [--objects 2000] [--concurrency 8] [--finetunes 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

FINETUNE_CRD = Path(__file__).resolve().parents[1] / "crds" / "finetunes.stockpot.dev.yaml"

GOALS = {"create": ">= 1000 objects/s", "get": ">= 1000 objects/s", "p99": "< 50 ms", "rss": "< 150 MB"}


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockpot_local.apiserver", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise RuntimeError(f"the server did not start: {url!r}")
    return proc, url


async def run_concurrently(count: int, concurrency: int, work: Callable[[int], Awaitable[None]]) -> float:
    """Run ``work(i)`` for i in range(count) with ``concurrency`` workers; return elapsed seconds."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"key": "value" * 10}}


async def throughput(session: aiohttp.ClientSession, url: str, count: int, concurrency: int) -> tuple[float, float]:
    base = f"{url}/api/v1/namespaces/default/configmaps"

    async def create(i: int) -> None:
        async with session.post(base, json=config_map(f"bench-{i}")) as response:
            assert response.status == 201, await response.text()

    async def get(i: int) -> None:
        async with session.get(f"{base}/bench-{i}") as response:
            assert response.status == 200, await response.text()

    create_s = await run_concurrently(count, concurrency, create)
    get_s = await run_concurrently(count, concurrency, get)
    return count / create_s, count / get_s


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


async def status_patch_rate(session: aiohttp.ClientSession, url: str, count: int, concurrency: int) -> float:
    """Merge patches of ``/status`` per second on ``count`` FineTunes, each changing ``status.progress.step``."""
    crd = yaml.safe_load(FINETUNE_CRD.read_text())
    async with session.post(f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd) as response:
        assert response.status == 201, await response.text()
    base = f"{url}/apis/stockpot.dev/v1alpha1/namespaces/default/finetunes"
    for _ in range(100):
        async with session.get(base) as response:
            if response.status == 200:
                break
        await asyncio.sleep(0.1)
    merge = {"Content-Type": "application/merge-patch+json"}

    async def create(i: int) -> None:
        async with session.post(base, json=finetune(f"ft-{i}")) as response:
            assert response.status == 201, await response.text()
        status = {"status": {"phase": "Running", "progress": {"step": 0, "totalSteps": 1000}}}
        async with session.patch(f"{base}/ft-{i}/status", json=status, headers=merge) as response:
            assert response.status == 200, await response.text()

    async def step(i: int) -> None:
        body = {"status": {"progress": {"step": 1}}}
        async with session.patch(f"{base}/ft-{i}/status", json=body, headers=merge) as response:
            assert response.status == 200, await response.text()

    await run_concurrently(count, concurrency, create)
    return count / await run_concurrently(count, concurrency, step)


async def watch_latency(session: aiohttp.ClientSession, url: str, events: int) -> list[float]:
    """Seconds from the start of each create request to the arrival of its ADDED event."""
    namespace = "bench-watch"
    async with session.post(f"{url}/api/v1/namespaces", json={"metadata": {"name": namespace}}) as response:
        assert response.status == 201
    base = f"{url}/api/v1/namespaces/{namespace}/configmaps"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def reader(response: aiohttp.ClientResponse) -> None:
        async for line in response.content:
            event = json.loads(line)
            name = event["object"]["metadata"]["name"]
            if event["type"] == "ADDED" and name in sent:
                latencies.append(time.perf_counter() - sent[name])
                if len(latencies) == events:
                    done.set()
                    return

    async with session.get(f"{base}?watch=true&resourceVersion=0") as response:
        task = asyncio.create_task(reader(response))
        for i in range(events):
            name = f"w-{i}"
            sent[name] = time.perf_counter()
            async with session.post(base, json=config_map(name)) as created:
                assert created.status == 201
            await asyncio.sleep(0.005)
        await asyncio.wait_for(done.wait(), timeout=60)
        task.cancel()
    return latencies


def megabytes(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 1024**2


async def measure(url: str, pid: int, count: int, concurrency: int, finetunes: int) -> dict[str, float]:
    await asyncio.sleep(1.0)
    idle = megabytes(pid)
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        create_rate, get_rate = await throughput(session, url, count, concurrency)
        latencies = sorted(await watch_latency(session, url, 300))
        status_patch = await status_patch_rate(session, url, finetunes, concurrency)
    return {
        "create": create_rate,
        "get": get_rate,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "rss": idle,
        "rss_loaded": megabytes(pid),
        "status_patch": status_patch,
    }


def report(results: dict[str, float], count: int, concurrency: int, finetunes: int) -> str:
    rows = [
        ("create throughput", f"{results['create']:.0f} objects/s", GOALS["create"]),
        ("get throughput", f"{results['get']:.0f} objects/s", GOALS["get"]),
        ("watch delivery p50", f"{results['p50']:.1f} ms", ""),
        ("watch delivery p99", f"{results['p99']:.1f} ms", GOALS["p99"]),
        ("idle RSS", f"{results['rss']:.0f} MB", GOALS["rss"]),
        (f"RSS after {count} objects", f"{results['rss_loaded']:.0f} MB", ""),
        (f"FineTune status patch throughput ({finetunes} objects)", f"{results['status_patch']:.0f} patches/s", ""),
    ]
    lines = [
        f"Embedded API server ({count} ConfigMaps, {concurrency} concurrent clients)",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value} | {goal} |" for name, value, goal in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--finetunes", type=int, default=300)
    args = parser.parse_args()
    proc, url = start_server()
    try:
        results = asyncio.run(measure(url, proc.pid, args.objects, args.concurrency, args.finetunes))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(report(results, args.objects, args.concurrency, args.finetunes))


if __name__ == "__main__":
    main()
