"""fetch() over file:// URLs (no network in tests) with real corpus files as the payload."""

from __future__ import annotations

import logging
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from cdsynth.data.download import fetch
from cdsynth.errors import DataError
from cdsynth.io import sha256_file

WIKI = "wikipedia/wikitext2_raw_test.txt.xz"


@pytest.fixture
def remote(corpus_dir: Path, tmp_path: Path) -> Path:
    """A private copy of a real file that a test may delete to prove the cache is used."""
    src = tmp_path / "remote" / "wiki.txt.xz"
    src.parent.mkdir()
    shutil.copyfile(corpus_dir / WIKI, src)
    return src


def test_fetch_with_right_checksum(remote: Path, tmp_path: Path) -> None:
    digest = sha256_file(remote)
    dest = fetch(remote.as_uri(), tmp_path / "cache" / "wiki.txt.xz", sha256=digest)
    assert dest.read_bytes() == remote.read_bytes()
    assert (dest.parent / "wiki.txt.xz.sha256").read_text().split()[0] == digest


def test_fetch_wrong_checksum_leaves_nothing(remote: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "wiki.txt.xz"
    with pytest.raises(DataError) as info:
        fetch(remote.as_uri(), dest, sha256="0" * 64)
    message = str(info.value)
    assert remote.as_uri() in message and "0" * 64 in message and sha256_file(remote) in message
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []  # no temp file left behind either


def test_fetch_without_checksum_logs_digest(remote: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="cdsynth.data.download"):
        fetch(remote.as_uri(), tmp_path / "cache" / "wiki.txt.xz")
    assert sha256_file(remote) in caplog.text


def test_cache_hit_does_not_refetch(remote: Path, tmp_path: Path) -> None:
    digest = sha256_file(remote)
    dest = tmp_path / "cache" / "wiki.txt.xz"
    fetch(remote.as_uri(), dest, sha256=digest)
    remote.unlink()
    assert fetch(remote.as_uri(), dest, sha256=digest) == dest
    assert fetch(remote.as_uri(), dest) == dest
    assert sha256_file(dest) == digest


def test_network_error_names_url(tmp_path: Path) -> None:
    url = (tmp_path / "gone.txt").as_uri()
    with pytest.raises(DataError, match="gone.txt.*manually"):
        fetch(url, tmp_path / "cache" / "gone.txt")
    assert not (tmp_path / "cache" / "gone.txt").exists()


def _zip(remote: Path, tmp_path: Path) -> Path:
    archive = tmp_path / "remote" / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(remote, "bundle/wiki.txt.xz")
        zf.writestr("bundle/README", "readme\n")
    return archive


def test_zip_member_extraction(remote: Path, tmp_path: Path) -> None:
    archive = _zip(remote, tmp_path)
    digest = sha256_file(archive)
    dest = tmp_path / "cache" / "wiki.txt.xz"
    assert fetch(archive.as_uri(), dest, sha256=digest, member="bundle/wiki.txt.xz") == dest
    assert dest.read_bytes() == remote.read_bytes()
    assert (tmp_path / "cache" / ".bundle.zip").is_file()  # archive cached for the other members
    archive.unlink()
    readme = fetch(archive.as_uri(), tmp_path / "cache" / "README", sha256=digest, member="bundle/README")
    assert readme.read_text() == "readme\n"


def test_tar_member_extraction(remote: Path, tmp_path: Path) -> None:
    archive = tmp_path / "remote" / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(remote, "./data/wiki.txt.xz")
    dest = fetch(archive.as_uri(), tmp_path / "cache" / "w.xz", member="data/wiki.txt.xz")
    assert dest.read_bytes() == remote.read_bytes()


def test_missing_member_lists_available(remote: Path, tmp_path: Path) -> None:
    archive = _zip(remote, tmp_path)
    dest = tmp_path / "cache" / "nope.txt"
    with pytest.raises(DataError, match="nope.txt") as info:
        fetch(archive.as_uri(), dest, member="bundle/nope.txt")
    assert "bundle/wiki.txt.xz" in str(info.value) and "bundle/README" in str(info.value)
    assert not dest.exists()
