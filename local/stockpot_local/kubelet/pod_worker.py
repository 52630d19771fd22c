"""One pod's life on the local kubelet: volumes, init containers, containers, probes, restarts, status."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockpot_local.kubelet.containers import ContainerRun, now
from stockpot_local.kubelet.env import ContainerConfigError, container_env, expand, remap_paths, rewrite_hosts
from stockpot_local.kubelet.pod_status import pod_conditions, pod_phase
from stockpot_local.kubelet.probes import run_probe
from stockpot_local.kubelet.volumes import container_mounts, prepare_volumes, working_dir

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_TICK = 0.2
_BACKOFF_CAP = 60.0


@dataclass
class PodContext:
    """What a pod worker needs from the kubelet: lookups and the status writer."""

    state_dir: Path
    node_name: str
    pod_ip: str
    base_env: dict[str, str]
    lookup_data: Callable[[Obj], Awaitable[tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]]]
    cluster_names: Callable[[str], dict[str, str]]
    service_env: Callable[[str], dict[str, str]]
    write_status: Callable[[Obj, Obj], Awaitable[None]]


@dataclass
class _Probes:
    next_at: float = 0.0
    failures: int = 0
    successes: int = 0


@dataclass
class PodWorker:
    pod: Obj
    context: PodContext
    containers: list[ContainerRun] = field(default_factory=list)
    init_containers: list[ContainerRun] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _since: dict[str, str] = field(default_factory=dict)
    _last_status: Obj | None = None
    _init_done: bool = False
    _init_failed: bool = False
    _probe_state: dict[tuple[str, str], _Probes] = field(default_factory=dict)
    _restart_at: dict[str, float] = field(default_factory=dict)
    _env: dict[str, dict[str, str]] = field(default_factory=dict)
    _start_time: str = field(default_factory=now)

    @property
    def root(self) -> Path:
        meta = self.pod["metadata"]
        return self.context.state_dir / "pods" / str(meta["namespace"]) / f"{meta['name']}-{meta['uid'][:8]}"

    def _runs(self, specs: list[Obj]) -> list[ContainerRun]:
        meta = self.pod["metadata"]
        logs = self.context.state_dir / "logs" / meta["namespace"] / meta["name"]
        return [ContainerRun(s, logs / f"{s['name']}.log", self.root / "termination" / s["name"]) for s in specs]

    async def run(self) -> None:
        self.pod = {
            **self.pod,
            "status": {**self.pod.get("status", {}), "podIP": self.context.pod_ip, "hostIP": "127.0.0.1"},
        }
        spec = self.pod["spec"]
        self.init_containers = self._runs(spec.get("initContainers") or [])
        self.containers = self._runs(spec["containers"])
        try:
            volumes = await self._volumes()
            if volumes is None:
                return
            await self._run_init(volumes)
            if not self._init_failed and not self._stopping:
                await self._run_main(volumes)
        except asyncio.CancelledError:
            for run in (*self.init_containers, *self.containers):
                run.kill()
            raise
        finally:
            self.finished.set()

    async def _volumes(self) -> dict[str, Path] | None:
        while not self._stopping:
            try:
                secrets, config_maps = await self.context.lookup_data(self.pod)
                volumes = prepare_volumes(self.pod, self.root, self.context.state_dir / "volumes", secrets, config_maps)
                for run in (*self.init_containers, *self.containers):
                    self._env[run.name] = self._environment(run.spec, secrets, config_maps, volumes)
                return volumes
            except ContainerConfigError as error:
                for run in self.containers:
                    run.waiting = {"reason": "CreateContainerConfigError", "message": str(error)}
                await self._report()
                await asyncio.sleep(2)
        return None

    def _environment(self, container: Obj, secrets: Any, config_maps: Any, volumes: dict[str, Path]) -> dict[str, str]:
        namespace = self.pod["metadata"]["namespace"]
        base = {**self.context.base_env, **self.context.service_env(namespace)}
        base["HOSTNAME"] = self.pod["spec"].get("hostname") or self.pod["metadata"]["name"]
        base["HOME"] = str(self.root)
        base["STOCKPOT_ROOT"] = str(self.root)
        env = container_env(self.pod, container, secrets, config_maps, base)
        mounts = container_mounts(container, volumes, self.root)
        names = self.context.cluster_names(namespace)
        return {k: rewrite_hosts(remap_paths(v, mounts), names) for k, v in env.items()}

    def _argv(self, run: ContainerRun, volumes: dict[str, Path]) -> tuple[list[str], str]:
        spec, env = run.spec, self._env[run.name]
        raw = [*(spec.get("command") or []), *(spec.get("args") or [])]
        if not spec.get("command"):
            raise ContainerConfigError("the local kubelet runs command/args; image entrypoints are not available")
        mounts = container_mounts(spec, volumes, self.root)
        names = self.context.cluster_names(self.pod["metadata"]["namespace"])
        argv = [rewrite_hosts(remap_paths(expand(a, env), mounts), names) for a in raw]
        return argv, working_dir(spec, mounts, self.root)

    async def _start(self, run: ContainerRun, volumes: dict[str, Path]) -> bool:
        try:
            argv, cwd = self._argv(run, volumes)
            os.makedirs(cwd, exist_ok=True)
            await run.start(argv, self._env[run.name], cwd)
            return True
        except ContainerConfigError as error:
            run.waiting = {"reason": "CreateContainerConfigError", "message": str(error)}
            return False
        except OSError as error:
            run.waiting = {"reason": "CreateContainerError", "message": str(error)}
            return False

    async def _run_init(self, volumes: dict[str, Path]) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for run in self.init_containers:
            while not self._stopping:
                if not await self._start(run, volumes):
                    await self._report()
                    await asyncio.sleep(2)
                    continue
                await self._report()
                assert run.process is not None
                code = await run.process.wait()
                run.finish(code, self._fallback(run))
                if run.terminated and run.terminated["exitCode"] == 0:
                    break
                if policy == "Never":
                    self._init_failed = True
                    await self._report()
                    return
                run.restart_count += 1
                await asyncio.sleep(min(2**run.restart_count, _BACKOFF_CAP))
        self._init_done = True

    def _fallback(self, run: ContainerRun) -> bool:
        return run.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError"

    async def _run_main(self, volumes: dict[str, Path]) -> None:
        for run in self.containers:
            await self._start(run, volumes)
        policy = self.pod["spec"].get("restartPolicy", "Always")
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._reap(policy, loop.time())
            await self._restart_due(volumes, loop.time())
            await self._probe_all(loop.time())
            phase = await self._report()
            if phase in ("Succeeded", "Failed"):
                return
            await asyncio.sleep(_TICK)

    async def _reap(self, policy: str, now_s: float) -> None:
        for run in self.containers:
            process = run.process
            if process is None or process.returncode is None:
                continue
            run.finish(process.returncode, self._fallback(run))
            code = run.terminated["exitCode"] if run.terminated else 1
            if not self._stopping and (policy == "Always" or (policy == "OnFailure" and code != 0)):
                self._restart_at[run.name] = now_s + min(2**run.restart_count, _BACKOFF_CAP)

    async def _restart_due(self, volumes: dict[str, Path], now_s: float) -> None:
        for run in self.containers:
            due = self._restart_at.get(run.name)
            if due is not None and now_s >= due:
                del self._restart_at[run.name]
                run.last_state = {"terminated": run.terminated} if run.terminated else {}
                run.restart_count += 1
                self._probe_state = {k: v for k, v in self._probe_state.items() if k[0] != run.name}
                await self._start(run, volumes)

    async def _probe_all(self, now_s: float) -> None:
        for run in self.containers:
            if not run.running:
                continue
            readiness, liveness = run.spec.get("readinessProbe"), run.spec.get("livenessProbe")
            if readiness is None:
                run.ready = True
            elif await self._probe(run, "readiness", readiness, now_s) is not None:
                run.ready = self._probe_state[(run.name, "readiness")].successes > 0
            if liveness is not None and await self._probe(run, "liveness", liveness, now_s) is False:
                state = self._probe_state[(run.name, "liveness")]
                if state.failures >= int(liveness.get("failureThreshold", 3)):
                    log.info("liveness probe failed for %s/%s; restarting", self.pod["metadata"]["name"], run.name)
                    await run.stop(float(self.pod["spec"].get("terminationGracePeriodSeconds", 30)))

    async def _probe(self, run: ContainerRun, kind: str, probe: Obj, now_s: float) -> bool | None:
        state = self._probe_state.setdefault(
            (run.name, kind), _Probes(next_at=now_s + float(probe.get("initialDelaySeconds", 0)))
        )
        if now_s < state.next_at:
            return None
        state.next_at = now_s + float(probe.get("periodSeconds", 10))
        ok = await run_probe(probe, run.spec, self.context.pod_ip, self._env.get(run.name, {}), str(self.root))
        if ok:
            state.failures, state.successes = 0, state.successes + 1
        else:
            state.successes = 0 if state.failures + 1 >= int(probe.get("failureThreshold", 3)) else state.successes
            state.failures += 1
        return ok

    async def _report(self) -> str:
        statuses = [run.status() for run in self.containers]
        phase = pod_phase(self.pod["spec"].get("restartPolicy", "Always"), self._init_done, self._init_failed, statuses)
        status: Obj = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": self.context.pod_ip,
            "podIPs": [{"ip": self.context.pod_ip}],
            "startTime": self._start_time,
            "conditions": pod_conditions(phase, self._init_done, statuses, self._since, now()),
            "containerStatuses": statuses,
        }
        if self.init_containers:
            status["initContainerStatuses"] = [run.status() for run in self.init_containers]
        if status != self._last_status:
            await self.context.write_status(self.pod, status)
            self._last_status = status
        return phase

    async def terminate(self, grace_seconds: float) -> None:
        """Graceful stop: SIGTERM every running container, SIGKILL after the grace period."""
        self._stopping = True
        runs = [run for run in (*self.init_containers, *self.containers) if run.running]
        await asyncio.gather(*(run.stop(grace_seconds) for run in runs))
