"""Batched log-probabilities (token budgets, chunked log-softmax) against one sequence at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import MICRO

from cdsynth.data.tokenizer import load_tokenizer
from cdsynth.eval import lm_scoring
from cdsynth.eval.lm_scoring import token_batches, token_logprobs
from cdsynth.io import read_arrow
from cdsynth.train.models import build_model


@pytest.fixture(scope="module")
def tokenizer(prepared):
    return load_tokenizer(prepared["tokenizer"])


@pytest.fixture(scope="module")
def sequences(prepared, tokenizer) -> tuple[list[list[int]], list[list[bool]]]:
    """40 real texts cut to 1..60 tokens, each with a random set of positions to score."""
    texts = read_arrow(prepared["corpus"] / "test.arrow").column("text").to_pylist()[:40]
    ids = [tokenizer(text)["input_ids"][: 1 + (7 * i) % 60] for i, text in enumerate(texts)]
    rng = np.random.default_rng(0)
    return ids, [list(rng.random(len(s)) < 0.5) for s in ids]


@torch.inference_mode()
def one_at_a_time(model, sequences, wanted) -> list[np.ndarray]:
    """The plain definition: each sequence alone, a full forward, log_softmax in float64."""
    out = []
    for ids, mask in zip(sequences, wanted):
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), dim=-1)
        out.append(np.array([logprobs[i - 1, ids[i]].item() for i in range(1, len(ids)) if mask[i]]))
    return out


def test_token_batches_stay_within_the_budget_longest_first():
    lengths = [5, 40, 12, 40, 3, 20, 7, 39, 1]
    for batch_size in (1, 2, 3, 100):
        batches = list(token_batches(lengths, batch_size))
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        flat = [lengths[i] for b in batches for i in b]
        assert flat == sorted(lengths, reverse=True)
        assert all(len(b) * lengths[b[0]] <= batch_size * max(lengths) for b in batches)
        assert len(batches[0]) >= min(batch_size, len(lengths)), "batch_size of the longest fit"
    assert [len(b) for b in token_batches(lengths, 1)] == [1, 1, 1, 2, 4], "short ones share a batch"
    assert len(list(token_batches(lengths, 100))) == 1
    assert list(token_batches([], 4)) == []


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_batched_logprobs_equal_one_sequence_at_a_time(tokenizer, sequences, batch_size, monkeypatch):
    """Any budget, padding and chunking of the log-softmax (float64 model: no float32 rounding to hide)."""
    model = build_model(MICRO, tokenizer, seed=0).double().eval()
    ids, wanted = sequences
    reference = one_at_a_time(model, ids, wanted)
    monkeypatch.setattr(lm_scoring, "LOGIT_ROWS", 5)  # several chunks per batch
    got = token_logprobs(model, ids, wanted, batch_size)
    assert [len(g) for g in got] == [sum(m[1:]) for m in wanted]
    assert sum(map(len, got)) > 100 and any(len(g) == 0 for g in got)
    for ours, theirs in zip(got, reference, strict=True):
        assert ours.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_float32_model_logprobs_match_to_float32_rounding(tokenizer, sequences):
    model = build_model(MICRO, tokenizer, seed=0).eval()
    ids, wanted = sequences
    for ours, theirs in zip(token_logprobs(model, ids, wanted, 4), one_at_a_time(model, ids, wanted)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def shared_prefix_items(sequences) -> tuple[list[list[int]], list[list[bool]], list[list[int]]]:
    """Items of 1..4 candidates: one real prefix (some long, some short) and each candidate's own ending.

    The candidates' endings are other texts' first tokens, so some begin with the prefix's next token
    (a longer common prefix than the item's own) and one item repeats a candidate (the same ids twice).
    """
    ids, wanted = sequences
    out_ids, out_wanted, groups = [], [], []
    rng = np.random.default_rng(1)
    for item in range(12):
        prefix = ids[(3 * item) % len(ids)][: 5 + 9 * item]
        endings = [ids[(item + k) % len(ids)][1 : 2 + k] for k in range(1 + item % 4)]
        if item == 5:
            endings.append(endings[0])
        group = []
        for ending in endings:
            group.append(len(out_ids))
            out_ids.append(prefix + ending)
            out_wanted.append(list(rng.random(len(prefix) + len(ending)) < 0.5))
        groups.append(group)
    return out_ids, out_wanted, groups


@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_shared_prefixes_give_the_whole_sequences_logprobs(tokenizer, sequences, batch_size, monkeypatch):
    """Prefixes of different lengths in one batch (padding masked), cut anywhere, any budget."""
    model = build_model(MICRO, tokenizer, seed=0).double().eval()
    ids, wanted, groups = shared_prefix_items(sequences)
    monkeypatch.setattr(lm_scoring, "MIN_SHARED", 4)
    shared = lm_scoring.shared_groups(ids, groups)
    assert len(shared) >= 8 and {len(g.members) for g in shared} >= {2, 3, 4}
    assert len({g.prefix for g in shared}) >= 6
    got = token_logprobs(model, ids, wanted, batch_size, groups=groups)
    for ours, theirs in zip(got, one_at_a_time(model, ids, wanted), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_a_common_prefix_is_counted_on_the_ids_and_leaves_each_sequence_a_token():
    assert lm_scoring.common_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert lm_scoring.common_prefix([[1, 2, 3], [1, 2, 3, 4]]) == 2
    assert lm_scoring.common_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert lm_scoring.common_prefix([[7], [7, 8]]) == 0
    assert lm_scoring.common_prefix([[1, 2], [3, 2]]) == 0


def test_a_model_whose_cache_cannot_be_shared_is_scored_whole(tokenizer):
    """A sliding-window cache keeps only its window: such a model is never given a shared prefix."""
    model = build_model(MICRO, tokenizer, seed=0).eval()
    assert lm_scoring.shares_prefixes(model)
    model.config.sliding_window = 4
    model.config.layer_types = ["sliding_attention"] * model.config.num_hidden_layers
    assert not lm_scoring.shares_prefixes(model)
