"""Readiness, liveness and startup probes: httpGet, tcpSocket and exec."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

Obj = dict[str, Any]


def _port(value: int | str, container: Obj) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"named port {value!r} not declared by container {container['name']!r}")


async def run_probe(probe: Obj, container: Obj, pod_ip: str, env: Mapping[str, str], cwd: str) -> bool:
    """One probe attempt: True when it succeeds within ``timeoutSeconds`` (default 1)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            action = probe["httpGet"]
            host = action.get("host") or pod_ip
            url = f"{action.get('scheme', 'HTTP').lower()}://{host}:{_port(action['port'], container)}{action.get('path', '/')}"
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
                session.get(url, headers=headers) as response,
            ):
                return 200 <= response.status < 400
        if "tcpSocket" in probe:
            action = probe["tcpSocket"]
            host = action.get("host") or pod_ip
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, _port(action["port"], container)), timeout
            )
            writer.close()
            return True
        if "exec" in probe:
            process = await asyncio.create_subprocess_exec(
                *probe["exec"]["command"],
                env=dict(env),
                cwd=cwd,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                return await asyncio.wait_for(process.wait(), timeout) == 0
            except TimeoutError:
                process.kill()
                return False
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
        return False
    return False
