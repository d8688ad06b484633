"""Which checkpoints a run saves (every K steps, the BabyLM marks of words seen) and which are evaluated."""

from __future__ import annotations

import pytest

from cdsynth.errors import ConfigError
from cdsynth.spec.schedule import BABYLM_MARKS, Checkpoints, babylm_steps, evaluated_steps

M = 1_000_000


def test_the_marks_are_the_2025_rules():
    names = [f"chck_{mark}M" for mark in BABYLM_MARKS]
    assert names[:3] == ["chck_1M", "chck_2M", "chck_3M"] and "chck_9M" in names and "chck_10M" in names
    assert names[-3:] == ["chck_800M", "chck_900M", "chck_1000M"] and len(names) == 9 + 9 + 10


def test_a_mark_is_saved_at_the_first_step_that_reaches_it():
    words = [0, 0.4 * M, 0.99 * M, 1.0 * M, 1.7 * M, 2.5 * M, 2.6 * M]
    assert babylm_steps(words) == {3: "chck_1M", 5: "chck_2M"}


def test_one_step_crossing_two_marks_carries_the_higher():
    assert babylm_steps([0, 0.5 * M, 3.2 * M, 9.9 * M, 10 * M]) == {2: "chck_3M", 3: "chck_9M", 4: "chck_10M"}


def test_no_mark_reached_saves_none():
    assert babylm_steps([0, 10.0, 20.0]) == {}


def test_a_schedule_needs_every_or_babylm():
    with pytest.raises(ConfigError, match="every: set it, or babylm: true"):
        Checkpoints()
    with pytest.raises(ConfigError, match="every: 0 must be >= 1"):
        Checkpoints(every=0)
    assert str(Checkpoints(every=5, babylm=True)) == "every 5 steps and BabyLM marks"


def test_evaluated_steps_take_every_strideth_from_the_last_and_every_mark():
    assert evaluated_steps([50, 100, 150, 200], 2) == [100, 200]
    assert evaluated_steps([50, 100, 150, 200], 4) == [200]
    saved = [50, 100, 150, 200, 230, 250, 300]  # 230: a mark between the fixed steps
    assert evaluated_steps(saved, 3, marked=[230]) == [50, 200, 230, 300]
