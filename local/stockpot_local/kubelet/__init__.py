"""The process kubelet: runs the local cluster's pods as local processes (see ``agent``)."""

from stockpot_local.kubelet.agent import Kubelet

__all__ = ["Kubelet"]
