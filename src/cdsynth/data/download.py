"""Fetch remote source files (optionally one member of an archive) into a local cache, checksum-verified."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from cdsynth.errors import DataError
from cdsynth.io import atomic_path, sha256_file
from cdsynth.spec.sources import local_name

log = logging.getLogger(__name__)

TIMEOUT_S = 60
_BLOCK = 1 << 20


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _recorded_digest(dest: Path) -> str | None:
    try:
        return _sidecar(dest).read_text().split()[0]
    except (OSError, IndexError):
        return None


def _record_digest(dest: Path, digest: str, url: str) -> None:
    with atomic_path(_sidecar(dest)) as tmp:
        tmp.write_text(f"{digest}  {url}\n")


def _download(url: str, dest: Path, sha256: str | None) -> str:
    """Stream `url` to `dest` atomically and return its sha256; a mismatch leaves nothing at `dest`."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, atomic_path(dest) as tmp:
            total = response.headers.get("Content-Length")
            bar = tqdm(
                total=int(total) if total and total.isdigit() else None,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=None,  # no bar in non-interactive logs (Snakemake, CI)
            )
            with bar, open(tmp, "wb") as sink:
                while block := response.read(_BLOCK):
                    sink.write(block)
                    digest.update(block)
                    bar.update(len(block))
            actual = digest.hexdigest()
            if sha256 is not None and actual != sha256.lower():
                raise DataError(
                    f"{url}: checksum mismatch: expected sha256 {sha256}, got {actual}. Update the checksum "
                    "in the config if the file changed upstream, or check that the URL is right."
                )
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as err:
        raise DataError(
            f"{url}: download failed ({err}). Download it manually and point the config at the local file."
        ) from err
    if sha256 is None:
        log.warning("%s: sha256 %s (add it to the config to pin this file)", url, actual)
    return actual


def _archive_members(archive: Path) -> tuple[str, list[str]]:
    """Return the archive kind ("zip" or "tar") and its file members."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            return "zip", [i.filename for i in zf.infolist() if not i.is_dir()]
    try:
        with tarfile.open(archive) as tf:  # "r:*" detects gzip / bz2 / xz compression from the content
            return "tar", [m.name for m in tf.getmembers() if m.isfile()]
    except tarfile.TarError as err:
        raise DataError(
            f"{archive}: not a zip or tar archive ({err}). Remove `member` from the config if the URL "
            "is a plain file, or delete the cached file to download it again."
        ) from err


def _extract(archive: Path, member: str, dest: Path, url: str) -> None:
    kind, names = _archive_members(archive)
    # Tar members often carry a "./" prefix that users leave out of the config.
    by_norm = {posixpath.normpath(n).lstrip("/"): n for n in names}
    name = by_norm.get(posixpath.normpath(member).lstrip("/"))
    if name is None:
        shown = ", ".join(sorted(names)[:10]) + (", ..." if len(names) > 10 else "")
        raise DataError(
            f"{url}: archive has no member {member!r} ({len(names)} files, e.g. {shown}). "
            "Fix `member` in the config."
        )
    with atomic_path(dest) as tmp, open(tmp, "wb") as sink:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf, zf.open(name) as src:
                shutil.copyfileobj(src, sink, _BLOCK)
        else:
            with tarfile.open(archive) as tf:
                handle = tf.extractfile(name)
                assert handle is not None  # only regular files are listed
                with handle:
                    shutil.copyfileobj(handle, sink, _BLOCK)


def _cached_ok(path: Path, sha256: str | None, rehash: bool) -> bool:
    """Whether `path` can be reused: present and, with a checksum, recorded (or re-hashed) as matching it."""
    if not path.is_file():
        return False
    if sha256 is None or _recorded_digest(path) == sha256.lower():
        return True
    return rehash and sha256_file(path) == sha256.lower()


def fetch(url: str, dest: str | os.PathLike, sha256: str | None = None, member: str | None = None) -> Path:
    """Download `url` to `dest` (or extract `member` of the archive at `url` to `dest`); return `dest`.

    `sha256` is the checksum of the downloaded file (the archive when `member` is given). It is recorded in
    a `<dest>.sha256` sidecar, so a cached file is neither downloaded nor hashed again.
    """
    dest = Path(dest)
    if _cached_ok(dest, sha256, rehash=member is None):
        if sha256 is not None and _recorded_digest(dest) != sha256.lower():
            _record_digest(dest, sha256.lower(), url)
        return dest
    if member is None:
        digest = _download(url, dest, sha256)
        _record_digest(dest, digest, url)
        return dest
    archive = dest.parent / f".{local_name(url)}"
    if _cached_ok(archive, sha256, rehash=True):
        digest = _recorded_digest(archive) or sha256_file(archive)
    else:
        digest = _download(url, archive, sha256)
        _record_digest(archive, digest, url)
    _extract(archive, member, dest, url)
    _record_digest(dest, digest, url)
    return dest
