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

Controls beyond the paper (off by default; docs/synthesis.md, "Repetition controls"):

- `amateur_temperature` divides the amateur's logits instead of T (Li et al. 2023's tau);
- `repetition_penalty` r, Hugging Face's rule on the scores before the head mask: a token already in the
  row (`seen`: prompt or generated) scores s / r where s > 0 and s * r where s <= 0. The scores are the CD
  scores for `cd`, log p_G for `vhead`, the logits / T for `ancestral` (which is HF's order: the penalty
  commutes with dividing by T). The head is still chosen on the unpenalised p_G;
- `no_repeat_ngram` n: a token that would complete an n-gram the row has already generated scores -inf
  (`banned`, from `repeated_ngram_bans`), before truncation (top-k does not count it) and after it;
- `min_p`: after top-k and top-p, tokens with p_G < min_p * max p_G get the cut value, as truncation does.

`seen` and `banned` are (batch, vocab) bool masks the caller keeps from each row's history (the torch engine
on the device); a backend without the history passes None, and must refuse those two controls.
"""

from __future__ import annotations

import torch

from cdsynth.spec.synthesis import Scoring

EPS = 1e-10


def contrast(
    expert_logits: torch.Tensor,
    amateur_logits: torch.Tensor | None,
    scoring: Scoring,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scores before truncation, in float32, shape (batch, vocab)."""
    expert = expert_logits.float() / scoring.temperature
    if scoring.method == "ancestral":
        # Raw logits rather than log p_G: softmax is the same, and a finite `ancestral_cut` then means what
        # the authors' penalty means, a logit.
        return penalize_repeats(expert, seen, scoring.repetition_penalty)
    probs = torch.softmax(expert, dim=-1)
    scores = torch.log(probs + EPS)
    if scoring.method == "cd":
        amateur_temperature = scoring.amateur_temperature or scoring.temperature
        amateur = torch.softmax(amateur_logits.float() / amateur_temperature, dim=-1)
        scores = scores - scoring.strength * torch.log(amateur + EPS)
    scores = penalize_repeats(scores, seen, scoring.repetition_penalty)
    head = probs > scoring.alpha * probs.amax(dim=-1, keepdim=True)
    return scores.masked_fill(~head, scoring.penalty)


def penalize_repeats(scores: torch.Tensor, seen: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """Hugging Face's repetition penalty on the `seen` entries: positive scores divided, others multiplied."""
    if seen is None or penalty == 1:
        return scores
    penalized = torch.where(scores > 0, scores / penalty, scores * penalty)
    return torch.where(seen, penalized, scores)


def repeated_ngram_bans(history: torch.Tensor, length: torch.Tensor, n: int, vocab: int) -> torch.Tensor:
    """(batch, vocab) bool: the tokens that would complete an n-gram already among the first `length`
    generated tokens of each row (`history`, (batch, columns); `length`, a (1,) device tensor).

    Shapes depend only on `history`'s, and `length` stays on the device, so a compiled step of it is one
    graph and nothing waits for the host.
    """
    rows, columns = history.shape
    banned = torch.zeros((rows, vocab), dtype=torch.int32, device=history.device)
    if columns < n:
        return banned.bool()
    windows = history.unfold(1, n, 1)  # (batch, columns - n + 1, n): every n-gram start
    # The row's newest n - 1 tokens, which the next token would extend into an n-gram.
    tail_columns = length - (n - 1) + torch.arange(n - 1, device=history.device)
    tail = history.index_select(1, tail_columns.clamp(min=0))
    ends = torch.arange(windows.shape[1], device=history.device) + n - 1
    complete = (ends < length) & (length >= n - 1)  # n-grams wholly generated, and a full tail
    match = (windows[..., :-1] == tail[:, None, :]).all(dim=-1) & complete
    # Columns past `length` may hold anything (the buffer is reused): their n-grams point at id 0, unmatched.
    last = windows[..., -1].masked_fill(~complete, 0)
    # An add, not a plain scatter: several n-grams may end in the same token, and only some may match.
    return banned.scatter_add_(1, last, match.int()) > 0


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


def cut_below_min_p(scores: torch.Tensor, expert_logits: torch.Tensor, scoring: Scoring) -> torch.Tensor:
    """Min-p on the expert's distribution at T: entries with p_G < min_p * max p_G get the cut value."""
    if scoring.min_p is None:
        return scores
    probs = torch.softmax(expert_logits.float() / scoring.temperature, dim=-1)
    return scores.masked_fill(probs < scoring.min_p * probs.amax(dim=-1, keepdim=True), scoring.cut_value)


def next_token_scores(
    expert_logits: torch.Tensor,
    amateur_logits: torch.Tensor | None,
    scoring: Scoring,
    seen: torch.Tensor | None = None,
    banned: torch.Tensor | None = None,
) -> torch.Tensor:
    """Contrast, the n-gram bans, then top-k, top-p and min-p: the scores the next token is drawn from."""
    scores = contrast(expert_logits, amateur_logits, scoring, seen)
    if banned is not None:  # before truncation, so that top-k and top-p do not count banned tokens
        scores = scores.masked_fill(banned, float("-inf"))
    scores = cut_below_min_p(truncate(scores, scoring), expert_logits, scoring)
    # And after it: a cut gives its entries a finite value, which would lift a ban.
    return scores if banned is None else scores.masked_fill(banned, float("-inf"))


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
    seen: torch.Tensor | None = None,
    banned: torch.Tensor | None = None,
) -> torch.Tensor:
    """Scores, truncation and sampling in one call (greedy when `uniform` is None)."""
    scores = next_token_scores(expert_logits, amateur_logits, scoring, seen, banned)
    return scores.argmax(dim=-1) if uniform is None else sample_from_scores(scores, uniform)
