"""Atomic outputs: nothing half-written under the final name, no litter, the modes a plain open() gives."""

from __future__ import annotations

import os
import stat

import pytest

from cdsynth.io import atomic_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_failed_write_leaves_neither_the_output_nor_a_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_the_next_write_removes_what_a_killed_write_left(tmp_path):
    """kill -9 skips the cleanup: the temporaries of `train.arrow` stay until it is written again."""
    (tmp_path / ".train.arrow.k3x_9qzp.tmp").write_bytes(b"partial")
    (tmp_path / ".train.arrow.ab12cd34.tmp").mkdir()
    (tmp_path / ".train.arrow.ab12cd34.tmp" / "part").write_bytes(b"partial")
    other = tmp_path / ".train.arrow.bak.ab12cd34.tmp"  # the temporary of another output, `train.arrow.bak`
    other.write_bytes(b"not ours")
    with atomic_path(tmp_path / "train.arrow") as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".train.arrow.bak.ab12cd34.tmp", "train.arrow"]


def test_outputs_get_the_umask_modes_files_in_directories_too(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "model", directory=True) as tmp:
            private = tmp / "model.safetensors"
            private.write_bytes(b"weights")
            os.chmod(private, 0o600)  # as safetensors writes it
            (tmp / "sub").mkdir(mode=0o700)
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a,b\n")
    finally:
        os.umask(old)
    assert mode(tmp_path / "model") == mode(tmp_path / "model" / "sub") == 0o755
    assert mode(tmp_path / "model" / "model.safetensors") == mode(tmp_path / "table.csv") == 0o644
