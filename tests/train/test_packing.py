"""Packing documents into blocks pass after pass, and mixtures that hold the configured synthetic share."""

from __future__ import annotations

import numpy as np
import pytest

from cdsynth.data.shards import Documents
from cdsynth.spec.mixture import Mixture
from cdsynth.train.packing import MixedBatches, PackedStream, packed_in_order


def documents(lengths: list[int], words: list[int] | None = None) -> Documents:
    """Documents whose every token says which document it is and where in it: 1000 x doc + position; each
    has `words` (by default its length minus BOS and EOS)."""
    tokens = np.concatenate([1000 * doc + np.arange(n) for doc, n in enumerate(lengths)]).astype(np.int32)
    words = np.array(words if words is not None else [n - 2 for n in lengths], dtype=np.int64)
    return Documents(tokens, np.concatenate([[0], np.cumsum(lengths)]), words)


def one_pass(stream: PackedStream, number: int) -> np.ndarray:
    return stream.take(number * stream.blocks_per_pass, stream.blocks_per_pass)


def test_fixed_packing_visits_every_in_order_block_once_per_pass_and_reshuffles():
    tokens, starts, _ = docs = documents([7, 30, 12, 25, 9, 40])
    stream = PackedStream(docs, 8, key=(3,), packing="fixed")
    blocks = packed_in_order(tokens, 8)
    assert stream.blocks_per_pass == len(blocks) == 15
    first, second = one_pass(stream, 0), one_pass(stream, 1)
    for taken in (first, second):
        assert sorted(map(tuple, taken)) == sorted(map(tuple, blocks))
    assert not np.array_equal(first, second)


def test_shuffled_packing_packs_every_document_whole_in_a_new_order_each_pass():
    lengths = [5, 13, 8, 21, 3, 17, 9, 30, 11, 6]
    tokens, starts, _ = docs = documents(lengths)
    stream = PackedStream(docs, 8, key=(3,), packing="shuffled")
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
    tokens, starts, _ = docs = documents([9, 14, 31, 6, 22, 17])
    stream = PackedStream(docs, 8, key=(2, 1), packing="shuffled")
    whole = stream.take(0, 40)
    fresh = PackedStream(docs, 8, key=(2, 1), packing="shuffled")
    assert np.array_equal(fresh.take(23, 9), whole[23:32])
    other = PackedStream(docs, 8, key=(3, 1), packing="shuffled")
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
    tokens, starts, _ = docs = documents(rng.integers(20, 41, size=480).tolist())
    fixed = shared_prompt_rate(PackedStream(docs, 128, (1,), "fixed"), 8)
    shuffled = shared_prompt_rate(PackedStream(docs, 128, (1,), "shuffled"), 8)
    chance = 7 / 479  # another document of the same prompt, drawn at random
    assert fixed > 0.5
    assert shuffled < 3 * chance


def tagged_stream(count: int, tag: int, width: int = 4) -> PackedStream:
    """`count` one-block documents whose first token says which stream they came from, the second which."""
    blocks = np.zeros((count, width), dtype=np.int32)
    blocks[:, 0] = tag
    blocks[:, 1] = np.arange(count)
    starts = np.arange(count + 1) * width
    return PackedStream(Documents(blocks.ravel(), starts, np.full(count, width)), width, (tag,), "fixed")


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
    tokens, starts, _ = docs = documents([9, 14, 31, 6, 22, 17, 40, 3])
    first = MixedBatches(PackedStream(docs, 8, (2,), "shuffled"), None, 8, 4)
    again = MixedBatches(PackedStream(docs, 8, (2,), "shuffled"), None, 8, 4)
    other = MixedBatches(PackedStream(docs, 8, (3,), "shuffled"), None, 8, 4)
    assert np.array_equal(first.batch(7), again.batch(7))
    assert not np.array_equal(first.batch(7), other.batch(7))
    assert first.ratio_seen(10) == 0.0


def words_by_token(tokens: np.ndarray, docs: Documents, offset: int = 0) -> float:
    """The words blocks carry, counted independently, token by token: each token of a document carries
    words / tokens of it (the tokens encode their document: 1000 x doc + position, plus `offset`)."""
    doc = (tokens.ravel() - offset) // 1000
    return float((docs.words[doc] / np.diff(docs.starts)[doc]).sum())


def test_a_document_cut_across_two_blocks_counts_in_each_in_proportion_to_its_tokens():
    docs = documents([6, 10], words=[3, 10])  # block 0: doc 0 + 2 tokens of doc 1; block 1: 8 of doc 1
    stream = PackedStream(docs, 8, key=(1,), packing="fixed")
    first = stream.take(0, 1)
    expected = 3 + 10 * 2 / 10 if first[0, 0] == 0 else 10 * 8 / 10
    assert stream.words_before(1) == pytest.approx(expected)
    assert stream.words_before(2) == pytest.approx(13)  # the pass: every word once


@pytest.mark.parametrize("packing", ["fixed", "shuffled"])
def test_words_before_a_position_are_the_words_of_the_blocks_taken(packing):
    rng = np.random.default_rng(5)
    docs = documents(rng.integers(3, 40, size=60).tolist(), words=rng.integers(0, 30, size=60).tolist())
    stream = PackedStream(docs, 16, key=(4,), packing=packing)
    for position in (0, 1, 7, stream.blocks_per_pass, 2 * stream.blocks_per_pass + 5):
        taken = stream.take(0, position)
        assert stream.words_before(position) == pytest.approx(words_by_token(taken, docs))


def test_a_mixture_counts_real_and_synthetic_words_apart():
    real = documents([9, 14, 31, 6, 22, 17, 40, 3], words=[4, 9, 20, 1, 15, 10, 33, 0])
    fake = documents([12, 12, 30, 5], words=[7, 8, 25, 2])
    fake = Documents(fake.tokens + 100_000, fake.starts, fake.words)
    batches = MixedBatches(
        PackedStream(real, 8, (1,), "shuffled"), PackedStream(fake, 8, (1, 1), "shuffled"), 8, 4, Mixture(0.5)
    )
    blocks = np.concatenate([batches.batch(step) for step in range(9)])
    synthetic = blocks[:, 0] >= 100_000
    seen_real, seen_synthetic = batches.words_seen(9)
    assert seen_real == pytest.approx(words_by_token(blocks[~synthetic], real))
    assert seen_synthetic == pytest.approx(words_by_token(blocks[synthetic], fake, offset=100_000))
