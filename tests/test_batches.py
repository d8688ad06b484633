"""Batch composition: every block once per pass, and mixtures that hold the configured synthetic share."""

from __future__ import annotations

import numpy as np
import pytest

from cdsynth.batches import BlockSampler, MixedBatches


def tagged_blocks(count: int, tag: int, width: int = 4) -> np.ndarray:
    """Blocks whose first token says which stream they came from and the rest which block they are."""
    blocks = np.zeros((count, width), dtype=np.int32)
    blocks[:, 0] = tag
    blocks[:, 1] = np.arange(count)
    return blocks


def test_sampler_visits_every_block_once_per_pass_and_reshuffles():
    sampler = BlockSampler(10, key=(3,))
    stream = sampler.take(0, 20)
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:])
    assert np.array_equal(BlockSampler(10, key=(3,)).take(12, 4), stream[12:16])


def synthetic_per_step(mixed: MixedBatches, steps: int) -> np.ndarray:
    return np.array([(mixed.batch(step)[:, 0] == 1).sum() for step in range(steps)])


def test_exact_rounding_meets_the_share_over_the_run():
    mixed = MixedBatches(tagged_blocks(50, 0), tagged_blocks(7, 1), 16, 16, seed=1, fraction=0.3)
    counts = synthetic_per_step(mixed, 100)
    assert counts.sum() == 480  # 30% of 1600 sequences
    assert set(counts) == {4, 5}  # 4.8 per batch: never more than one away from the share
    assert mixed.synthetic_share(100) == pytest.approx(0.3)


def test_paper_rounding_floors_per_micro_batch():
    mixed = MixedBatches(
        tagged_blocks(50, 0), tagged_blocks(7, 1), 64, 16, seed=1, fraction=0.3, rounding="paper"
    )
    for step in range(5):
        tags = mixed.batch(step)[:, 0].reshape(4, 16)
        assert (tags == 1).sum(axis=1).tolist() == [4, 4, 4, 4]
    assert mixed.synthetic_share(10) == pytest.approx(0.25)


def test_both_streams_are_used_whole_before_any_block_repeats():
    mixed = MixedBatches(tagged_blocks(40, 0), tagged_blocks(12, 1), 8, 8, seed=5, fraction=0.5)
    seen = np.concatenate([mixed.batch(step) for step in range(3)])  # 12 synthetic, 12 real
    synthetic, real = seen[seen[:, 0] == 1, 1], seen[seen[:, 0] == 0, 1]
    assert sorted(synthetic) == list(range(12))
    assert len(set(real)) == len(real) == 12


def test_a_baseline_batch_depends_only_on_seed_and_step():
    real = tagged_blocks(30, 0)
    first = MixedBatches(real, None, 8, 4, seed=2)
    assert np.array_equal(first.batch(7), MixedBatches(real, None, 8, 4, seed=2).batch(7))
    assert not np.array_equal(first.batch(7), MixedBatches(real, None, 8, 4, seed=3).batch(7))
    assert first.synthetic_share(10) == 0.0
