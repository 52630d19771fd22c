import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from stockpot_runtime.storage.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    NotFoundError,
    StorageError,
)
from stockpot_runtime.storage.s3 import S3Settings, settings_from_env, translate_error

pytestmark = pytest.mark.unit

SETTINGS = S3Settings(endpoint_url="http://127.0.0.1:9")
SECRET = "s3cr3t-value-never-shown"


def _client_error(code: str, message: str = "boom") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetObject")


def test_settings_defaults() -> None:
    assert settings_from_env({}) == S3Settings()
    assert S3Settings().addressing_style == "path"


def test_settings_from_env_prefers_the_s3_specific_endpoint() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://general",
        "AWS_ENDPOINT_URL_S3": "http://s3-only",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "STOCKPOT_S3_ADDRESSING_STYLE": "virtual",
        "AWS_MAX_ATTEMPTS": "2",
        "STOCKPOT_S3_CONCURRENCY": "8",
    }
    settings = settings_from_env(env)
    assert settings.endpoint_url == "http://s3-only"
    assert settings.region == "eu-west-1"
    assert settings.addressing_style == "virtual"
    assert (settings.max_attempts, settings.concurrency) == (2, 8)
    assert settings_from_env({"AWS_ENDPOINT_URL": "http://general"}).endpoint_url == "http://general"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"STOCKPOT_S3_ADDRESSING_STYLE": "dns"}, "STOCKPOT_S3_ADDRESSING_STYLE"),
        ({"AWS_MAX_ATTEMPTS": "0"}, "AWS_MAX_ATTEMPTS"),
        ({"STOCKPOT_S3_CONCURRENCY": "many"}, "STOCKPOT_S3_CONCURRENCY"),
    ],
)
def test_settings_reject_nonsense(env: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings_from_env(env)


@pytest.mark.parametrize(
    ("code", "kind", "hint"),
    [
        ("NoSuchBucket", BucketNotFoundError, "bucket 'bkt' does not exist at http://127.0.0.1:9"),
        ("NoSuchKey", NotFoundError, "no such object"),
        ("404", NotFoundError, "no such object"),
        ("AccessDenied", AccessDeniedError, "credentials Secret"),
        ("InvalidAccessKeyId", AccessDeniedError, "credentials Secret"),
        ("SignatureDoesNotMatch", AccessDeniedError, "credentials Secret"),
        ("SlowDown", StorageError, "S3 error SlowDown"),
    ],
)
def test_client_errors_become_storage_errors(code: str, kind: type[StorageError], hint: str) -> None:
    error = translate_error(_client_error(code, f"signature for {SECRET}"), "s3://bkt/k", SETTINGS)
    assert type(error) is kind
    assert str(error).startswith("s3://bkt/k: ")
    assert hint in str(error)
    if kind is not StorageError:
        assert SECRET not in str(error)


def test_wrapped_upload_failure_is_unwrapped() -> None:
    try:
        try:
            raise _client_error("NoSuchBucket")
        except ClientError as exc:
            raise S3UploadFailedError(f"Failed to upload: {exc}") from None
    except S3UploadFailedError as wrapped:
        wrapped.__context__ = _client_error("NoSuchBucket")
        error = translate_error(wrapped, "s3://bkt/k", SETTINGS)
    assert isinstance(error, BucketNotFoundError)


def test_connection_and_credential_failures() -> None:
    unreachable = translate_error(EndpointConnectionError(endpoint_url="http://x"), "s3://b/k", SETTINGS)
    assert isinstance(unreachable, EndpointUnreachableError)
    assert "http://127.0.0.1:9" in str(unreachable)
    assert "AWS_ENDPOINT_URL_S3" in str(unreachable)
    missing = translate_error(NoCredentialsError(), "s3://b/k", SETTINGS)
    assert isinstance(missing, AccessDeniedError)
    assert "AWS_ACCESS_KEY_ID" in str(missing)
    assert translate_error(ValueError("unrelated"), "s3://b/k", SETTINGS) is None
