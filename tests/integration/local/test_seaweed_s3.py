"""SeaweedFS through boto3, as the runtime and the tests use it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import psutil
import pytest
from botocore.exceptions import ClientError

from stockpot_local.managed_process import wait_until
from stockpot_local.s3 import S3Access, SeaweedS3, make_client

pytestmark = pytest.mark.integration


def test_put_get_list_delete(s3: S3Access, s3_bucket: str) -> None:
    client = s3.client()
    client.put_object(Bucket=s3_bucket, Key="runs/a/manifest.json", Body=b'{"files": []}')
    client.put_object(Bucket=s3_bucket, Key="runs/a/final/model.safetensors", Body=b"\x00" * 1024)
    client.put_object(Bucket=s3_bucket, Key="runs/b/progress.json", Body=b"{}")

    body = client.get_object(Bucket=s3_bucket, Key="runs/a/manifest.json")["Body"].read()
    assert body == b'{"files": []}'
    listed = client.list_objects_v2(Bucket=s3_bucket, Prefix="runs/a/")
    assert {item["Key"]: item["Size"] for item in listed["Contents"]} == {
        "runs/a/final/model.safetensors": 1024,
        "runs/a/manifest.json": 13,
    }

    client.delete_object(Bucket=s3_bucket, Key="runs/a/manifest.json")
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=s3_bucket, Key="runs/a/manifest.json")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_fresh_buckets_are_distinct_and_empty(s3: S3Access, s3_bucket: str) -> None:
    names = {bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]}
    assert s3_bucket in names
    assert s3.client().list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0


def test_env_alone_configures_boto3(s3: S3Access, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    client = boto3.session.Session().client("s3")
    client.put_object(Bucket=s3_bucket, Key="from-env", Body=b"hello")
    assert s3.client().get_object(Bucket=s3_bucket, Key="from-env")["Body"].read() == b"hello"


def test_wrong_credentials_are_rejected_with_a_clear_error(s3: S3Access, s3_bucket: str) -> None:
    intruder = make_client(s3.endpoint_url, s3.access_key, "not-the-secret")
    with pytest.raises(ClientError) as denied:
        intruder.put_object(Bucket=s3_bucket, Key="x", Body=b"x")
    assert denied.value.response["Error"]["Code"] == "SignatureDoesNotMatch"

    stranger = make_client(s3.endpoint_url, "nobody", "nothing")
    with pytest.raises(ClientError) as unknown:
        stranger.list_objects_v2(Bucket=s3_bucket)
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"


_ORPHANING_PARENT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from stockpot_local.s3 import SeaweedS3
    server = SeaweedS3(Path(sys.argv[1]))
    server.start()
    print(server.pid, flush=True)
    os.kill(os.getpid(), 9)
    """
)


def test_server_dies_with_its_parent(tmp_path: Path) -> None:
    parent = subprocess.run(
        [sys.executable, "-c", _ORPHANING_PARENT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    weed_pid = int(parent.stdout.strip())
    assert wait_until(lambda: not _alive(weed_pid), timeout=10)


def test_stop_leaves_no_process_and_data_survives_restart(tmp_path: Path) -> None:
    with SeaweedS3(tmp_path) as first:
        pid = first.pid
        first.create_bucket("kept")
        first.client().put_object(Bucket="kept", Key="k", Body=b"v")
    assert pid is not None
    assert not _alive(pid)
    with SeaweedS3(tmp_path) as second:
        assert second.client().get_object(Bucket="kept", Key="k")["Body"].read() == b"v"


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
