"""Resumable jobs: a work directory kept for the same key, discarded for another, published in one rename."""

from __future__ import annotations

from cdsynth.io import read_json
from cdsynth.resumable import KEY_FILE, WorkDir, work_path


def test_an_attempt_with_the_same_key_keeps_the_work_and_another_discards_it(tmp_path, capsys):
    out = tmp_path / "result"
    work = WorkDir(out, {"settings": 1}).open()
    (work / "part-1").write_text("finished by a killed attempt")
    assert work == work_path(out) and not out.exists()
    assert (WorkDir(out, {"settings": 1}).open() / "part-1").read_text() == "finished by a killed attempt"
    assert not (WorkDir(out, {"settings": 2}).open() / "part-1").exists()
    assert "discarding" in capsys.readouterr().err


def test_publishing_puts_the_named_parts_in_place_and_removes_the_work(tmp_path):
    out = tmp_path / "result"
    out.mkdir()
    (out / "stale").write_text("left by an older result")
    job = WorkDir(out, {"settings": 1})
    work = job.open()
    (work / "step10").mkdir()
    (work / "step10" / "scores.json").write_text("{}")
    (work / "state.pt").write_text("not part of the result")
    job.publish(["step10", KEY_FILE])
    assert sorted(p.name for p in out.iterdir()) == ["job.json", "step10"]
    assert read_json(out / KEY_FILE) == {"settings": 1}
    assert not work.exists()
    assert job.finished() and not WorkDir(out, {"settings": 2}).finished()
