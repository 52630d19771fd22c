"""The node's service proxy (kube-proxy's job): clusterIP:port → a ready endpoint, over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any

from stockpot_local.controllers.informer import Informer

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def backends(endpoints: Obj | None, port_name: str | None) -> list[tuple[str, int]]:
    """Ready (ip, port) pairs of an Endpoints object for the service port ``port_name``."""
    out: list[tuple[str, int]] = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p for p in subset.get("ports") or [] if p.get("name") == port_name or len(subset["ports"]) == 1]
        for address in subset.get("addresses") or []:
            out.extend((address["ip"], int(p["port"])) for p in ports)
    return out


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


class ServiceProxy:
    """Listens on every Service's clusterIP:port and forwards each connection to a ready endpoint."""

    def __init__(self, services: Informer, endpoints: Informer) -> None:
        self.services, self.endpoints = services, endpoints
        self._servers: dict[tuple[str, int], asyncio.Server] = {}
        self._rr = itertools.count()
        services.add_handler(lambda _type, _obj: self.sync())

    def sync(self) -> None:
        wanted: dict[tuple[str, int], tuple[str, str, str | None]] = {}
        for service in self.services.objects():
            ip = service.get("spec", {}).get("clusterIP")
            if not ip or ip == "None":
                continue
            for port in service["spec"].get("ports") or []:
                if port.get("protocol", "TCP") == "TCP":
                    meta = service["metadata"]
                    wanted[(ip, int(port["port"]))] = (meta["namespace"], meta["name"], port.get("name"))
        for key in set(self._servers) - set(wanted):
            self._servers.pop(key).close()
        for key, target in wanted.items():
            if key not in self._servers:
                asyncio.get_running_loop().create_task(self._listen(key, target))

    async def _listen(self, key: tuple[str, int], target: tuple[str, str, str | None]) -> None:
        if key in self._servers:
            return

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            namespace, name, port_name = target
            endpoints = next((e for e in self.endpoints.objects(namespace) if e["metadata"]["name"] == name), None)
            choices = backends(endpoints, port_name)
            if not choices:
                writer.close()
                return
            host, port = choices[next(self._rr) % len(choices)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

        try:
            self._servers[key] = await asyncio.start_server(handle, key[0], key[1])
        except OSError as error:
            log.warning("service proxy cannot listen on %s:%s: %s", key[0], key[1], error)

    def close(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()
