from pathlib import Path

import httpx2
import pytest
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from stockpot_runtime.storage.errors import EndpointUnreachableError, HubError
from stockpot_runtime.storage.hub import download_hub, translate_hub_error
from stockpot_runtime.storage.uri import HubLocation

pytestmark = pytest.mark.unit

URI = "hf://bogus-org/bogus-model"


def test_offline_hub_names_the_repo_and_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(EndpointUnreachableError) as info:
        download_hub(HubLocation("bogus-org/bogus-model", "main"), tmp_path / "dest")
    message = str(info.value)
    assert message.startswith("hf://bogus-org/bogus-model@main: ")
    assert "hub is unreachable" in message


def _response(status: int) -> httpx2.Response:
    return httpx2.Response(status, request=httpx2.Request("GET", "https://hub.invalid/api/models/x"))


@pytest.mark.parametrize(
    ("exc", "kind", "hint"),
    [
        (GatedRepoError("gated", response=_response(403)), HubError, "gated"),
        (RevisionNotFoundError("rev", response=_response(404)), HubError, "revision 'v9'"),
        (RepositoryNotFoundError("missing", response=_response(404)), HubError, "repository not found"),
        (httpx2.ConnectError("refused"), EndpointUnreachableError, "may be unreachable"),
    ],
)
def test_hub_failures_are_explained(exc: Exception, kind: type[Exception], hint: str) -> None:
    error = translate_hub_error(exc, URI, "v9")
    assert type(error) is kind
    assert str(error).startswith(f"{URI}: ")
    assert hint in str(error)
