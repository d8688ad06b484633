"""The scoring function against a plain per-row reference written from the paper's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from cdsynth.errors import ConfigError
from cdsynth.synth.scoring import (
    Scoring,
    contrast,
    next_token_scores,
    next_tokens,
    repeated_ngram_bans,
    sample_from_scores,
    truncate,
)


def reference_row(
    expert: list[float], amateur: list[float], s: Scoring, seen: list[bool] | None = None
) -> list[float]:
    """One row, one token at a time, in float64: the rules of REFERENCE.md section 1, nothing clever, and
    the controls beyond the paper as the scoring module's docstring defines them (`seen`: ids in the row)."""
    seen = seen or [False] * len(expert)

    def penalized(score, repeated):
        if not repeated or s.repetition_penalty == 1:
            return score
        return score / s.repetition_penalty if score > 0 else score * s.repetition_penalty

    e = [x / s.temperature for x in expert]
    z = sum(math.exp(x - max(e)) for x in e)
    p_g = [math.exp(x - max(e)) / z for x in e]
    if s.method == "ancestral":
        scores = [penalized(x, r) for x, r in zip(e, seen)]  # the raw logits after T; softmax gives p_G
        fill = s.ancestral_cut
    else:
        a = [x / (s.amateur_temperature or s.temperature) for x in amateur]
        za = sum(math.exp(x - max(a)) for x in a)
        p_b = [math.exp(x - max(a)) / za for x in a]
        top = max(p_g)
        scores = []
        for pg, pb, repeated in zip(p_g, p_b, seen):
            if pg > s.alpha * top:
                score = math.log(pg + 1e-10)
                if s.method == "cd":
                    score -= s.strength * math.log(pb + 1e-10)
                scores.append(penalized(score, repeated))
            else:
                scores.append(s.penalty)
        fill = s.penalty
    if s.top_k is not None and s.top_k < len(scores):
        kth = sorted(scores, reverse=True)[s.top_k - 1]
        scores = [x if x >= kth else fill for x in scores]
    if s.top_p is not None and s.top_p < 1:
        order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep index order
        m = max(scores)
        weights = [math.exp(scores[i] - m) for i in order]
        total, mass, kept = sum(weights), 0.0, set()
        for rank, i in enumerate(order):
            if rank > 0 and mass >= s.top_p:
                break
            kept.add(i)
            mass += weights[rank] / total
        scores = [x if i in kept else fill for i, x in enumerate(scores)]
    if s.min_p is not None:
        scores = [x if pg >= s.min_p * max(p_g) else fill for x, pg in zip(scores, p_g)]
    return scores


def logits_pair(seed: int = 0, batch: int = 6, vocab: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, vocab, generator=g) * 3, torch.randn(batch, vocab, generator=g) * 3


SETTINGS = [
    Scoring(method="ancestral"),
    Scoring(method="ancestral", top_k=5),
    Scoring(method="ancestral", top_p=0.9, temperature=0.7),
    Scoring(method="ancestral", top_k=5, ancestral_cut=-20.0),
    Scoring(method="ancestral", top_p=0.9, ancestral_cut=-20.0),
    Scoring(method="vhead"),
    Scoring(method="vhead", alpha=0.3, penalty=-5.0, top_p=0.95),
    Scoring(method="cd"),
    Scoring(method="cd", temperature=1.5, strength=0.5),
    Scoring(method="cd", top_k=3),
    Scoring(method="cd", top_p=0.8),
    Scoring(method="cd", penalty=float("-inf"), top_k=4, top_p=0.9),
    # beyond the paper
    Scoring(method="ancestral", min_p=0.05),
    Scoring(method="ancestral", top_p=0.9, min_p=0.1, repetition_penalty=1.5, temperature=0.7),
    Scoring(method="vhead", repetition_penalty=2.0, min_p=0.2),
    Scoring(method="cd", min_p=0.3),
    Scoring(method="cd", repetition_penalty=1.3, top_k=5),
    Scoring(method="cd", amateur_temperature=0.5, strength=0.5),
    Scoring(method="cd", amateur_temperature=2.0, repetition_penalty=1.2, min_p=0.15, top_p=0.9),
]


@pytest.mark.parametrize("scoring", SETTINGS, ids=repr)
def test_scores_equal_the_reference(scoring):
    expert, amateur = logits_pair()
    seen = torch.rand(expert.shape, generator=torch.Generator().manual_seed(9)) < 0.3
    ours = next_token_scores(expert, amateur, scoring, seen=seen).double()
    for row in range(expert.shape[0]):
        expected = reference_row(expert[row].tolist(), amateur[row].tolist(), scoring, seen[row].tolist())
        expected = torch.tensor(expected, dtype=torch.float64)
        cut = torch.isinf(expected) | (expected == scoring.cut_value)
        assert torch.equal(cut, torch.isinf(ours[row]) | (ours[row] == scoring.cut_value))
        assert torch.allclose(ours[row][~cut], expected[~cut], atol=1e-4)


def test_head_is_strictly_above_alpha_times_max():
    # p = [0.5, 0.25, 0.125, 0.125]: with alpha 0.5 the head is {0} only, 0.25 == alpha * max is out.
    expert = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    scores = contrast(expert, None, Scoring(method="vhead", alpha=0.5, penalty=-20.0))
    assert scores[0].tolist()[1:] == [-20.0, -20.0, -20.0]
    assert scores[0, 0].item() == pytest.approx(math.log(0.5 + 1e-10))


def test_top_k_keeps_every_token_tied_with_the_kth():
    scores = torch.tensor([[3.0, 1.0, 3.0, 3.0, 0.0]])
    kept = truncate(scores, Scoring(method="ancestral", top_k=2))
    assert torch.isfinite(kept).tolist() == [[True, False, True, True, False]]


def test_top_p_keeps_the_token_that_crosses_p():
    scores = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    assert torch.isfinite(truncate(scores, Scoring(method="ancestral", top_p=0.6))).tolist() == [
        [False, True, True]
    ]
    assert torch.isfinite(truncate(scores, Scoring(method="ancestral", top_p=0.5))).tolist() == [
        [False, True, False]
    ]
    tie = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25]]))
    kept = torch.isfinite(truncate(tie, Scoring(method="ancestral", top_p=0.4)))
    assert kept.tolist() == [[True, True, False, False]], "ties are ranked by index"


def test_cut_entries_take_the_penalty_for_head_methods():
    expert, amateur = logits_pair(1)
    scores = next_token_scores(expert, amateur, Scoring(method="cd", top_k=2, penalty=-7.0))
    assert ((scores == -7.0).sum(dim=-1) >= expert.shape[1] - 2).all()


@pytest.mark.parametrize("scoring", [Scoring(method="ancestral"), Scoring(method="cd", top_p=0.97)], ids=repr)
def test_sampled_frequencies_match_softmax_of_scores(scoring):
    vocab, draws = 6, 40_000
    expert = torch.tensor([[2.0, 1.5, 1.0, 0.2, -1.0, -3.0]])
    amateur = torch.tensor([[2.5, 0.5, 1.0, 0.0, -2.0, -1.0]])
    scores = next_token_scores(expert, amateur, scoring)
    probs = torch.softmax(scores, dim=-1)[0].double().numpy()
    g = torch.Generator().manual_seed(123)
    uniform = torch.rand(draws, 1, generator=g)
    tokens = sample_from_scores(scores.expand(draws, vocab), uniform).numpy()
    counts = np.bincount(tokens, minlength=vocab)
    support = probs * draws > 5  # chi-square needs expected counts; rarer tokens must stay rare
    assert counts[~support].sum() <= max(10, 5 * probs[~support].sum() * draws)
    expected = probs[support] / probs[support].sum() * counts[support].sum()
    assert chisquare(counts[support], expected).pvalue > 1e-3


def test_the_authors_ancestral_cut_is_a_raw_logit():
    # Their top-k processor gives cut tokens the logit -20: a kept token of logit 5 outweighs a cut one
    # by exp(25), whatever the logits' normalisation.
    expert = torch.tensor([[5.0, 4.0, 3.0, -1.0]])
    scores = next_token_scores(expert, None, Scoring(method="ancestral", top_k=2, ancestral_cut=-20.0))
    assert scores.tolist() == [[5.0, 4.0, -20.0, -20.0]]
    strict = next_token_scores(expert, None, Scoring(method="ancestral", top_k=2))
    assert torch.softmax(strict, -1)[0, 2:].tolist() == [0.0, 0.0]


def test_greedy_without_noise_is_argmax():
    expert, amateur = logits_pair(2)
    scoring = Scoring(method="cd")
    assert torch.equal(
        next_tokens(expert, amateur, scoring, None), next_token_scores(expert, amateur, scoring).argmax(-1)
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"temperature": 0.0}, "temperature"),
        ({"method": "beam"}, "method"),
        ({"penalty": 3.0}, "penalty"),
        ({"method": "ancestral", "ancestral_cut": 1.0}, "ancestral_cut"),
        ({"method": "cd", "ancestral_cut": -20.0}, "ancestral_cut"),
        ({"min_p": 0.0}, "min_p"),
        ({"min_p": 1.0}, "min_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"no_repeat_ngram": 0}, "no_repeat_ngram"),
        ({"no_repeat_ngram": 2.5}, "no_repeat_ngram"),
        ({"method": "vhead", "amateur_temperature": 0.5}, "amateur_temperature"),
        ({"amateur_temperature": 0.0}, "amateur_temperature"),
    ],
)
def test_bad_settings_are_rejected(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        Scoring(**kwargs)


def test_sampling_inverts_the_cdf_and_never_picks_a_cut_token():
    scores = torch.log(torch.tensor([[0.1, 0.2, 0.7, 0.0]]))
    picks = [
        sample_from_scores(scores, torch.tensor([[u]])).item() for u in (0.0, 0.05, 0.15, 0.31, 0.999999)
    ]
    assert picks == [0, 0, 1, 2, 2]


# Controls beyond the paper, on hand-made logits with known answers.


def test_min_p_keeps_tokens_at_least_min_p_times_the_top_probability():
    expert = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    kept = [
        torch.isfinite(next_token_scores(expert, None, Scoring(method="ancestral", min_p=m)))[0].tolist()
        for m in (0.49, 0.51, 0.19)
    ]
    assert kept == [[True, True, False, False], [True, False, False, False], [True, True, True, True]]
    # a head method cuts to its penalty, and min-p reads p_G, not the contrast
    amateur = torch.log(torch.tensor([[0.9, 0.05, 0.03, 0.02]]))
    scores = next_token_scores(expert, amateur, Scoring(method="cd", alpha=0.01, min_p=0.45, penalty=-9.0))
    assert scores[0, 2:].tolist() == [-9.0, -9.0] and (scores[0, :2] > -9.0).all()


def test_the_repetition_penalty_divides_positive_and_multiplies_negative_scores_of_seen_ids():
    expert = torch.tensor([[2.0, -1.0, 0.5, -3.0]])
    seen = torch.tensor([[True, True, False, False]])
    scores = next_token_scores(expert, None, Scoring(method="ancestral", repetition_penalty=2.0), seen=seen)
    assert scores.tolist() == [[1.0, -2.0, 0.5, -3.0]]
    # on the CD scores of the head only: a seen token outside the head keeps the penalty
    expert, amateur = torch.log(torch.tensor([[0.6, 0.38, 0.02]])), torch.log(torch.tensor([[0.2, 0.7, 0.1]]))
    scoring = Scoring(method="cd", repetition_penalty=1.5, penalty=-20.0)
    plain = next_token_scores(expert, amateur, Scoring(method="cd"))
    penalized = next_token_scores(expert, amateur, scoring, seen=torch.tensor([[True, True, True]]))
    assert plain[0, 0] > 0 > plain[0, 1]  # one positive and one negative CD score in the head
    assert penalized[0].tolist() == pytest.approx([plain[0, 0].item() / 1.5, plain[0, 1].item() * 1.5, -20.0])


def bans(history, length, n, vocab=10):
    banned = repeated_ngram_bans(torch.tensor(history), torch.tensor([length]), n, vocab)
    return [set(torch.nonzero(row).flatten().tolist()) for row in banned]


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_ngram():
    assert bans([[5, 6, 7, 5, 6]], 5, 3) == [{7}]  # 5 6 -> 7 happened: "5 6 7" may not come again
    assert bans([[5, 6, 7, 5, 6]], 4, 3) == [set()]  # after "5 6 7 5" the tail "7 5" has no past
    assert bans([[5, 6, 7, 6, 6]], 5, 2) == [{7, 6}]  # after 6 came 7 and 6
    assert bans([[4, 4, 5, 0, 0]], 3, 1) == [{4, 5}]  # n = 1: no generated token twice
    # columns past `length` are not history yet; rows are independent
    assert bans([[1, 2, 3, 1, 9, 9], [3, 3, 3, 3, 3, 3]], 4, 2) == [{2}, {3}]
    assert bans([[1, 2]], 2, 3) == [set()]  # fewer columns than n
    assert bans([[1, 2, 1, 10**12]], 3, 2) == [{2}]  # an unwritten column may hold any value


def test_a_banned_token_stays_out_through_truncation():
    expert = torch.tensor([[5.0, 4.0, 3.0, 2.0]])
    banned = torch.tensor([[True, False, False, False]])
    for scoring in (
        Scoring(method="ancestral", top_k=2, ancestral_cut=-20.0),
        Scoring(method="vhead", top_p=0.5),
    ):
        scores = next_token_scores(expert, None, scoring, banned=banned)
        assert scores[0, 0] == float("-inf")
        assert torch.isfinite(scores[0, 1:]).all()  # cut entries keep their finite cut value
        assert scores[0, 1] == scores[0].max()  # top-k and top-p ranked the others without it
