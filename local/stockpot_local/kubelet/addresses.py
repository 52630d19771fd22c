"""Pod addresses on loopback.

Local-cluster deviation: every pod gets its own loopback address from 127.64.0.0/10 (services get theirs from
127.32.0.0/11, see ``stockpot_local.controllers.service``). Loopback only: this machine may not use private
ranges such as 10.x. A container should bind to its pod IP (``fieldRef: status.podIP``); binding 0.0.0.0 works
for one pod but two pods listening on the same port would then collide, as they never would in a real cluster.
"""

from __future__ import annotations

import ipaddress

POD_NETWORK = ipaddress.ip_network("127.64.0.0/10")


class PodAddresses:
    """Hands out a distinct pod address per pod uid and takes it back when the pod is gone."""

    def __init__(self) -> None:
        self._by_uid: dict[str, str] = {}
        self._next = int(POD_NETWORK.network_address) + 2

    def allocate(self, uid: str) -> str:
        if uid in self._by_uid:
            return self._by_uid[uid]
        taken = set(self._by_uid.values())
        while True:
            address = str(ipaddress.ip_address(self._next))
            self._next += 1
            if self._next >= int(POD_NETWORK.broadcast_address):
                self._next = int(POD_NETWORK.network_address) + 2
            if address not in taken and address.rsplit(".", 1)[1] not in ("0", "255"):
                self._by_uid[uid] = address
                return address

    def adopt(self, uid: str, address: str) -> None:
        """Keep an address a pod already has (after a kubelet restart)."""
        self._by_uid[uid] = address

    def release(self, uid: str) -> None:
        self._by_uid.pop(uid, None)
