"""Atomic file outputs and Arrow shard I/O shared by every pipeline step."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdsynth.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A killed job therefore never leaves a half-written output under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        make_public(tmp)
        move_into_place(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def remove_stale_temporaries(path: Path) -> None:
    """Delete what a killed earlier write of `path` left behind (`.NAME.XXXXXXXX.tmp` siblings).

    Only one job writes a given output at a time (Snakemake's locks, one CLI per `--out`), so any such
    sibling is a leftover; at paper scale one can hold hundreds of MB. The 8 characters are tempfile's
    random part, so another output's temporaries (`.NAME.suffix.XXXXXXXX.tmp`) never match.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.{'[!.]' * 8}.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def make_public(tmp: Path) -> None:
    """Give an output, and everything in an output directory, the modes a plain open() or mkdir() would.

    mkstemp/mkdtemp and some writers (safetensors) create private 0600 entries, which a group on a shared
    cluster could not read.
    """
    mask = _umask()
    entries = [tmp]
    if tmp.is_dir():
        entries += [Path(root) / name for root, dirs, files in os.walk(tmp) for name in dirs + files]
    for entry in entries:
        if not entry.is_symlink():
            os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~mask)


def move_into_place(source: Path, path: Path) -> None:
    """Rename `source` onto `path`, replacing a directory there too (os.replace only replaces files)."""
    if source.is_dir() and path.exists():
        shutil.rmtree(path)
    os.replace(source, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_arrow(table: pa.Table, path: str | os.PathLike) -> None:
    """Write `table` atomically in the Arrow IPC stream format (what `datasets.Dataset.from_file` reads)."""
    with (
        atomic_path(path) as tmp,
        pa.OSFile(str(tmp), "wb") as sink,
        pa.ipc.new_stream(sink, table.schema) as writer,
    ):
        writer.write_table(table)


def read_arrow(path: str | os.PathLike) -> pa.Table:
    """Memory-map an Arrow stream file; a truncated or foreign file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: file not found. Rebuild it with Snakemake (it is an output of the workflow)."
        )
    try:
        # The table's buffers point into the map, so it must stay open as long as they live.
        return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as err:
        raise DataError(
            f"{path}: corrupt Arrow file ({err}). Delete it and rerun Snakemake to rebuild it."
        ) from err


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
