"""Frozen copy of the torch engine before the GPU issue, kept as the benchmark's baseline.

Nothing in src/ imports it: `bench/gpu_window.py` times it beside the engine in `cdsynth.synth.engine`.
It is the generation loop of commit d5f80db (`src/cdsynth/synth/engine.py`), with that commit's scoring
functions (`src/cdsynth/synth/scoring.py`) copied in, so that later changes to either leave it as it was:

- every batch allocates its own static caches and mask, and runs both models eagerly one token at a time;
- each step builds its cache position on the host (`torch.tensor([...], device=...)`, a host-to-device copy);
- the token picker (contrast, truncation, inverse-CDF sampling) is eager, or compiled on its own
  (`torch.compile(next_tokens, dynamic=False)`), which is what the paper preset's `synth.compile: true`
  meant then;
- one generator on the device draws a uniform per row and step, and each batch ends with `.tolist()`.

Only the value type `Scoring` comes from the package (`cdsynth.spec.synthesis`, torch-free).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, StaticCache

from cdsynth.spec.synthesis import Scoring

EPS = 1e-10


# --- scoring, as in d5f80db's cdsynth.synth.scoring -----------------------------------------------------


def contrast(
    expert_logits: torch.Tensor, amateur_logits: torch.Tensor | None, scoring: Scoring
) -> torch.Tensor:
    """Scores before truncation, in float32, shape (batch, vocab)."""
    expert = expert_logits.float() / scoring.temperature
    if scoring.method == "ancestral":
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
        cut_sorted = (probs.cumsum(dim=-1) - probs) >= scoring.top_p
        cut_sorted[..., 0] = False
        cut = torch.zeros_like(cut_sorted).scatter(-1, order, cut_sorted)
        scores = scores.masked_fill(cut, fill)
    return scores


def sample_from_scores(scores: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Draw from softmax(scores) by inverting its float64 CDF at `uniform` (one U(0, 1) per row)."""
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
    scores = truncate(contrast(expert_logits, amateur_logits, scoring), scoring)
    return scores.argmax(dim=-1) if uniform is None else sample_from_scores(scores, uniform)


# --- the engine, as in d5f80db's cdsynth.synth.engine ----------------------------------------------------


@dataclass
class Decoder:
    """Expert, amateur (None for methods without one) and the compiled or eager token picker."""

    expert: PreTrainedModel
    amateur: PreTrainedModel | None
    pad_id: int
    pick: Callable = next_tokens

    @property
    def device(self) -> torch.device:
        return self.expert.device


def compiled_picker() -> Callable:
    """The picker as d5f80db's `load_decoder(compile_scoring=True)` made it."""
    return torch.compile(next_tokens, dynamic=False)


def left_pad(
    prompts: list[list[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) with every prompt right-aligned."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


@functools.cache
def cache_keyword(model_class: type) -> str:
    """The name `forward` takes the KV cache under: `cache` from transformers 5.24, else `past_key_values`."""
    parameters = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def forward_last(model, ids, mask, positions, cache, cache_position) -> torch.Tensor:
    """Next-token logits (batch, vocab) for the last column, writing its keys and values into `cache`."""
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        **{cache_keyword(type(model)): cache},
        cache_position=cache_position,
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :]


@torch.inference_mode()
def generate(
    decoder: Decoder,
    prompts: list[list[int]],
    scoring: Scoring,
    new_tokens: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """`new_tokens` sampled ids per prompt, shape (rows, new_tokens); greedy if `generator` is None."""
    models = [decoder.expert] + ([decoder.amateur] if scoring.needs_amateur else [])
    device, rows = decoder.device, len(prompts)
    ids, prompt_mask = left_pad(prompts, decoder.pad_id, device)
    width = ids.shape[1]
    mask = torch.cat([prompt_mask, prompt_mask.new_zeros((rows, new_tokens))], dim=-1)
    positions = (prompt_mask.cumsum(dim=-1) - 1).clamp(min=0)
    caches = [StaticCache(config=m.config, max_cache_len=width + new_tokens) for m in models]
    where = torch.arange(width, device=device)
    logits = [forward_last(m, ids, mask, positions, c, where) for m, c in zip(models, caches)]
    out = torch.empty((rows, new_tokens), dtype=torch.long, device=device)
    for step in range(new_tokens):
        uniform = None if generator is None else torch.rand((rows, 1), generator=generator, device=device)
        token = decoder.pick(logits[0], logits[1] if len(logits) > 1 else None, scoring, uniform)
        out[:, step] = token
        if step == new_tokens - 1:
            break
        mask[:, width + step] = 1
        positions = positions[:, -1:] + 1
        where = torch.tensor([width + step], device=device)
        logits = [forward_last(m, token[:, None], mask, positions, c, where) for m, c in zip(models, caches)]
    return out


@dataclass
class TorchEngine:
    """The torch backend for a synthetic shard: batches of `batch_size` rows from one seeded stream."""

    decoder: Decoder
    scoring: Scoring
    batch_size: int

    def continue_prompts(
        self, prompts: list[list[int]], new_tokens: int, seed: int, progress: Callable[[int], object]
    ) -> list[list[int]]:
        """`new_tokens` sampled ids per prompt; `progress` hears of every finished batch's tokens."""
        torch.manual_seed(seed)
        generator = torch.Generator(self.decoder.device).manual_seed(seed)
        out = []
        for begin in range(0, len(prompts), self.batch_size):
            batch = prompts[begin : begin + self.batch_size]
            out += generate(self.decoder, batch, self.scoring, new_tokens, generator).tolist()
            progress(len(batch) * new_tokens)
        return out
