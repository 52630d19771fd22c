"""Controllers of the local cluster: Job, Deployment, ReplicaSet, Service/Endpoints."""

from stockpot_local.controllers.manager import ControllerManager

__all__ = ["ControllerManager"]
