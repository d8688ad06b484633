"""Next-token scores for contrastive decoding and its baselines, in pure torch (every backend uses this).

The rules follow the paper's logits processors (`docs/fidelity.md`, "Scoring"); this is the one place they
are written out:

- temperature T divides both models' logits; p_G, p_B are their softmaxes;
- head V_head = {x : p_G(x) > alpha * max p_G};
- `cd`:        score = log(p_G + 1e-10) - strength * log(p_B + 1e-10) on the head, `penalty` elsewhere;
- `vhead`:     score = log(p_G + 1e-10) on the head, `penalty` elsewhere;
- `ancestral`: score = the expert's logit / T (plain sampling from the expert: softmax gives p_G);
- then optional top-k / top-p on those scores (cut entries get `penalty` for the head methods, as in the
  paper; for ancestral they get `ancestral_cut`, a raw logit: -inf by default, as in standard sampling,
  or the authors' -20); the next token is drawn from softmax(scores).

`penalty` is a constant score, not -inf, so tokens outside the head keep a tiny probability; pass
`float("-inf")` for strict CD.
"""

from __future__ import annotations

import torch

from cdsynth.spec.synthesis import Scoring

EPS = 1e-10


def contrast(
    expert_logits: torch.Tensor, amateur_logits: torch.Tensor | None, scoring: Scoring
) -> torch.Tensor:
    """Scores before truncation, in float32, shape (batch, vocab)."""
    expert = expert_logits.float() / scoring.temperature
    if scoring.method == "ancestral":
        # Raw logits rather than log p_G: softmax is the same, and a finite `ancestral_cut` then means what
        # the authors' penalty means, a logit.
        return expert
    probs = torch.softmax(expert, dim=-1)
    scores = torch.log(probs + EPS)
    if scoring.method == "cd":
        amateur = torch.softmax(amateur_logits.float() / scoring.temperature, dim=-1)
        scores = scores - scoring.strength * torch.log(amateur + EPS)
    head = probs > scoring.alpha * probs.amax(dim=-1, keepdim=True)
    return scores.masked_fill(~head, scoring.penalty)


def truncate(scores: torch.Tensor, scoring: Scoring) -> torch.Tensor:
    """Top-k, then top-p, on the scores; cut entries get `scoring.cut_value`."""
    fill = scoring.cut_value
    if scoring.top_k is not None and scoring.top_k < scores.shape[-1]:
        kth = torch.topk(scores, scoring.top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, fill)
    if scoring.top_p is not None and scoring.top_p < 1:
        ordered, order = torch.sort(scores, dim=-1, descending=True, stable=True)
        probs = torch.softmax(ordered, dim=-1)
        # Keep a token while the mass before it is below p: the first token that crosses p stays.
        cut_sorted = (probs.cumsum(dim=-1) - probs) >= scoring.top_p
        cut_sorted[..., 0] = False
        cut = torch.zeros_like(cut_sorted).scatter(-1, order, cut_sorted)
        scores = scores.masked_fill(cut, fill)
    return scores


def next_token_scores(
    expert_logits: torch.Tensor, amateur_logits: torch.Tensor | None, scoring: Scoring
) -> torch.Tensor:
    return truncate(contrast(expert_logits, amateur_logits, scoring), scoring)


def sample_from_scores(scores: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Draw from softmax(scores) by inverting its CDF at `uniform` (one U(0, 1) per row, shape (batch, 1)).

    One random number per row instead of one per token (as Gumbel-max needs) makes sampling cheap on
    large vocabularies; the CDF is accumulated in float64 so that rounding cannot shift mass. Passing the
    uniforms in keeps the function free of RNG state: the same draws give the same tokens anywhere.
    """
    cdf = torch.softmax(scores.double(), dim=-1).cumsum(dim=-1)
    target = uniform.double() * cdf[:, -1:]
    return torch.searchsorted(cdf, target, right=True).clamp_(max=scores.shape[-1] - 1).squeeze(-1)


def next_tokens(
    expert_logits: torch.Tensor,
    amateur_logits: torch.Tensor | None,
    scoring: Scoring,
    uniform: torch.Tensor | None,
) -> torch.Tensor:
    """Scores, truncation and sampling in one call (greedy when `uniform` is None)."""
    scores = next_token_scores(expert_logits, amateur_logits, scoring)
    return scores.argmax(dim=-1) if uniform is None else sample_from_scores(scores, uniform)
