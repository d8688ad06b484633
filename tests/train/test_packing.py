"""Packing documents into blocks pass after pass, and mixtures that hold the configured synthetic share."""

from __future__ import annotations

import numpy as np
import pytest

from cdsynth.spec.mixture import Mixture
from cdsynth.train.packing import MixedBatches, PackedStream, packed_in_order


def documents(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Documents whose every token says which document it is and where in it: 1000 x doc + position."""
    tokens = np.concatenate([1000 * doc + np.arange(n) for doc, n in enumerate(lengths)]).astype(np.int32)
    return tokens, np.concatenate([[0], np.cumsum(lengths)])


def one_pass(stream: PackedStream, number: int) -> np.ndarray:
    return stream.take(number * stream.blocks_per_pass, stream.blocks_per_pass)


def test_fixed_packing_visits_every_in_order_block_once_per_pass_and_reshuffles():
    tokens, starts = documents([7, 30, 12, 25, 9, 40])
    stream = PackedStream(tokens, starts, 8, key=(3,), packing="fixed")
    blocks = packed_in_order(tokens, 8)
    assert stream.blocks_per_pass == len(blocks) == 15
    first, second = one_pass(stream, 0), one_pass(stream, 1)
    for taken in (first, second):
        assert sorted(map(tuple, taken)) == sorted(map(tuple, blocks))
    assert not np.array_equal(first, second)


def test_shuffled_packing_packs_every_document_whole_in_a_new_order_each_pass():
    lengths = [5, 13, 8, 21, 3, 17, 9, 30, 11, 6]
    tokens, starts = documents(lengths)
    stream = PackedStream(tokens, starts, 8, key=(3,), packing="shuffled")
    cut_points = []
    for number in range(3):
        taken = one_pass(stream, number)
        doc, position = np.divmod(taken.ravel(), 1000)
        counts = np.bincount(doc, minlength=len(lengths))
        # At most one document is cut by the end of the pass; every other one is there whole or not at all.
        partial = [d for d, n in enumerate(lengths) if 0 < counts[d] < n]
        assert len(partial) <= 1 and counts.sum() == stream.blocks_per_pass * 8
        for row in taken:  # inside a block a document runs on, or the next one starts at its beginning
            d, pos = np.divmod(row, 1000)
            follows = (d[1:] == d[:-1]) & (pos[1:] == pos[:-1] + 1)
            starts_new = (pos[1:] == 0) & (pos[:-1] == np.array(lengths)[d[:-1]] - 1)
            assert (follows | starts_new).all()
        cut_points.append(frozenset(tuple(row[[0, -1]]) for row in taken))
    assert len(set(cut_points)) == 3, "each pass cuts the documents at other points"


def test_a_stream_is_a_pure_function_of_key_and_position():
    tokens, starts = documents([9, 14, 31, 6, 22, 17])
    stream = PackedStream(tokens, starts, 8, key=(2, 1), packing="shuffled")
    whole = stream.take(0, 40)
    fresh = PackedStream(tokens, starts, 8, key=(2, 1), packing="shuffled")
    assert np.array_equal(fresh.take(23, 9), whole[23:32])
    other = PackedStream(tokens, starts, 8, key=(3, 1), packing="shuffled")
    assert not np.array_equal(other.take(0, 40), whole)


def shared_prompt_rate(stream: PackedStream, continuations: int) -> float:
    """Among pairs of documents that meet in a block, the share that continue the same prompt."""
    same = pairs = 0
    for block in one_pass(stream, 0):
        docs = np.unique(block // 1000)
        prompts = docs // continuations
        pairs += len(docs) * (len(docs) - 1) // 2
        same += sum(n * (n - 1) // 2 for n in np.unique(prompts, return_counts=True)[1])
    return same / pairs


def test_continuations_of_one_prompt_no_longer_share_blocks_beyond_chance():
    # 60 prompts x 8 continuations of 20-40 tokens, in generation order, as a synthetic corpus is.
    rng = np.random.default_rng(0)
    tokens, starts = documents(rng.integers(20, 41, size=480).tolist())
    fixed = shared_prompt_rate(PackedStream(tokens, starts, 128, (1,), "fixed"), 8)
    shuffled = shared_prompt_rate(PackedStream(tokens, starts, 128, (1,), "shuffled"), 8)
    chance = 7 / 479  # another document of the same prompt, drawn at random
    assert fixed > 0.5
    assert shuffled < 3 * chance


def tagged_stream(count: int, tag: int, width: int = 4) -> PackedStream:
    """`count` one-block documents whose first token says which stream they came from, the second which."""
    blocks = np.zeros((count, width), dtype=np.int32)
    blocks[:, 0] = tag
    blocks[:, 1] = np.arange(count)
    return PackedStream(blocks.ravel(), np.arange(count + 1) * width, width, key=(tag,), packing="fixed")


def synthetic_per_step(mixed: MixedBatches, steps: int) -> np.ndarray:
    return np.array([(mixed.batch(step)[:, 0] == 1).sum() for step in range(steps)])


def test_exact_rounding_meets_the_share_over_the_run():
    mixed = MixedBatches(tagged_stream(50, 0), tagged_stream(7, 1), 16, 16, Mixture(0.3))
    counts = synthetic_per_step(mixed, 100)
    assert counts.sum() == 480  # 30% of 1600 sequences
    assert set(counts) == {4, 5}  # 4.8 per batch: never more than one away from the share
    assert mixed.ratio_seen(100) == pytest.approx(0.3)


def test_paper_rounding_floors_per_micro_batch():
    mixed = MixedBatches(tagged_stream(50, 0), tagged_stream(7, 1), 64, 16, Mixture(0.3, "paper"))
    for step in range(5):
        tags = mixed.batch(step)[:, 0].reshape(4, 16)
        assert (tags == 1).sum(axis=1).tolist() == [4, 4, 4, 4]
    assert mixed.ratio_seen(10) == pytest.approx(0.25)


def test_both_streams_are_used_whole_before_any_block_repeats():
    mixed = MixedBatches(tagged_stream(40, 0), tagged_stream(12, 1), 8, 8, Mixture(0.5))
    seen = np.concatenate([mixed.batch(step) for step in range(3)])  # 12 synthetic, 12 real
    synthetic, real = seen[seen[:, 0] == 1, 1], seen[seen[:, 0] == 0, 1]
    assert sorted(synthetic) == list(range(12))
    assert len(set(real)) == len(real) == 12


def test_a_baseline_batch_depends_only_on_the_stream_and_step():
    tokens, starts = documents([9, 14, 31, 6, 22, 17, 40, 3])
    first = MixedBatches(PackedStream(tokens, starts, 8, (2,), "shuffled"), None, 8, 4)
    again = MixedBatches(PackedStream(tokens, starts, 8, (2,), "shuffled"), None, 8, 4)
    other = MixedBatches(PackedStream(tokens, starts, 8, (3,), "shuffled"), None, 8, 4)
    assert np.array_equal(first.batch(7), again.batch(7))
    assert not np.array_equal(first.batch(7), other.batch(7))
    assert first.ratio_seen(10) == 0.0
