"""Resumable jobs: work in `<out>.partial/`, keep what a killed attempt finished, publish by one rename.

Training runs, evaluations of a run and corpora made by `cdsynth generate` take minutes to days, so a
killed or timed-out job must not lose its progress. Snakemake deletes a job's outputs before rerunning
it, so the progress lives beside the output, in a work directory stamped with a key: everything the
result depends on (inputs and settings). An attempt with the same key keeps the finished parts; one with
another key starts over, saying so. The result appears at `out` whole, in one rename, and only then is
the work directory removed, so a kill at any moment leaves either the work to resume or the result.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cdsynth.io import atomic_path, read_json, write_json

KEY_FILE = "job.json"


def work_path(out: str | os.PathLike) -> Path:
    """Where the job that makes `out` keeps its progress: beside it, not in it."""
    return Path(f"{out}.partial")


class WorkDir:
    """The work directory of the job that makes `out`, for the inputs and settings in `key`."""

    def __init__(self, out: str | os.PathLike, key: dict[str, Any]):
        self.out = Path(out)
        self.path = work_path(out)
        self.key = key

    def open(self) -> Path:
        """Create the work directory, or keep the one an earlier attempt with this key left; return it."""
        stamp = self.path / KEY_FILE
        if self.path.exists() and (not stamp.is_file() or read_json(stamp) != self.key):
            print(f"discarding {self.path}: it was made from other inputs or settings", file=sys.stderr)
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.key, stamp)
        return self.path

    def finished(self) -> bool:
        """Whether `out` is already the result of this very key (published with its `job.json`)."""
        stamp = self.out / KEY_FILE
        return stamp.is_file() and read_json(stamp) == self.key

    def publish(self, parts: Iterable[str]) -> None:
        """Put the named files and directories of the work directory at `out`, in one rename.

        The parts are hard-linked into a staging directory, so the work directory stays whole until the
        result is in place; it is removed after. Name `job.json` among the parts to keep the key with the
        result (what it was made from).
        """
        with atomic_path(self.out, directory=True) as staged:
            for name in parts:
                source = self.path / name
                if source.is_dir():
                    shutil.copytree(source, staged / name, copy_function=os.link)
                else:
                    os.link(source, staged / name)
        shutil.rmtree(self.path)
