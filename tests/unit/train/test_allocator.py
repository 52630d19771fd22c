"""Choosing the run process's allocator: tcmalloc when present, unless told otherwise or already loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockpot_runtime.allocator import find_tcmalloc, in_use, preload_env

pytestmark = pytest.mark.unit
LIB = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")


@pytest.mark.parametrize(
    ("environ", "library", "preload"),
    [
        ({}, LIB, str(LIB)),
        ({"LD_PRELOAD": "/opt/libfoo.so"}, LIB, f"{LIB} /opt/libfoo.so"),
        ({"LD_PRELOAD": str(LIB)}, LIB, None),  # already running under it: no second exec
        ({"STOCKPOT_MALLOC": "system"}, LIB, None),
        ({"STOCKPOT_MALLOC": "tcmalloc"}, None, None),  # not installed: run as is
    ],
)
def test_preload_env(environ: dict[str, str], library: Path | None, preload: str | None) -> None:
    env = preload_env(environ, library)
    assert (env or {}).get("LD_PRELOAD") == preload
    if env is not None:
        assert {k: v for k, v in env.items() if k != "LD_PRELOAD"} == {
            k: v for k, v in environ.items() if k != "LD_PRELOAD"
        }


def test_an_unknown_setting_names_the_choices() -> None:
    with pytest.raises(ValueError, match="STOCKPOT_MALLOC='jemalloc': use tcmalloc"):
        preload_env({"STOCKPOT_MALLOC": "jemalloc"}, LIB)


def test_found_in_the_first_directory_that_has_it(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "libtcmalloc.so.4").write_bytes(b"")
    assert find_tcmalloc([str(tmp_path / "a"), str(tmp_path / "b")]) == tmp_path / "b" / "libtcmalloc.so.4"
    assert find_tcmalloc([str(tmp_path / "a")]) is None


def test_in_use_reads_the_process_maps(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n")
    assert in_use(maps) == "tcmalloc"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert in_use(maps) == "system"
    assert in_use(tmp_path / "missing") == "system"
