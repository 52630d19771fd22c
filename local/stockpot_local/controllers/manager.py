"""The controller manager: shared informers plus the Job, Deployment, ReplicaSet and Service controllers.

Everything goes through the API over HTTP, so the manager runs against the embedded API server or a real
cluster alike.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from stockpot_local.controllers.deployment import DeploymentController
from stockpot_local.controllers.informer import Informer, WorkQueue
from stockpot_local.controllers.job import JobController
from stockpot_local.controllers.replicaset import ReplicaSetController
from stockpot_local.controllers.service import ServiceController
from stockpot_local.kubeclient import DEPLOYMENTS, ENDPOINTS, JOBS, PODS, REPLICASETS, SERVICES, KubeClient

log = logging.getLogger(__name__)


class ControllerManager:
    """Runs all controllers of the local cluster. The controllers keep no local state (everything lives
    in the API); `state_dir` is created so that the manager and the kubelet share one layout."""

    def __init__(self, api_url: str, state_dir: Path) -> None:
        self.api_url = api_url
        self.state_dir = Path(state_dir)
        self.client = KubeClient(api_url)
        self.informers = {
            res.plural: Informer(self.client, res)
            for res in (PODS, JOBS, DEPLOYMENTS, REPLICASETS, SERVICES, ENDPOINTS)
        }
        inf = self.informers
        self.jobs = JobController(self.client, inf["jobs"], inf["pods"])
        self.replicasets = ReplicaSetController(self.client, inf["replicasets"], inf["pods"])
        self.deployments = DeploymentController(self.client, inf["deployments"], inf["replicasets"])
        self.services = ServiceController(self.client, inf["services"], inf["endpoints"], inf["pods"])
        self._queues: list[WorkQueue] = [
            c.queue for c in (self.jobs, self.replicasets, self.deployments, self.services)
        ]

    async def start(self) -> None:
        """Start informers, wait until each has listed once, then start the work queues."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for informer in self.informers.values():
            informer.start()
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in self.informers.values())), timeout=30)
        for queue in self._queues:
            queue.start()
        log.info("controller manager started against %s", self.api_url)

    async def stop(self) -> None:
        for queue in self._queues:
            await queue.stop()
        for informer in self.informers.values():
            await informer.stop()
        await self.client.close()
