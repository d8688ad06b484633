"""Frozen copy of the torch engine before the GPU issue, kept as the benchmark's baseline.

Nothing in src/ imports it: `bench/gpu_window.py` times it beside the engine in `cdsynth.synth.engine`.
It is the generation loop of commit d5f80db (`src/cdsynth/synth/engine.py`); the scoring, the padding and
the one-token forward it calls are the package's own (unchanged since), so only the loop is frozen:

- every batch allocates its own static caches and mask, and runs both models eagerly one token at a time;
- each step builds its cache position on the host (`torch.tensor([...], device=...)`, a host-to-device copy);
- the token picker (contrast, truncation, inverse-CDF sampling) is eager, or compiled on its own
  (`torch.compile(next_tokens, dynamic=False)`), which is what the paper preset's `synth.compile: true`
  meant then;
- one generator on the device draws a uniform per row and step, and each batch ends with `.tolist()`.

"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, StaticCache

from cdsynth.spec.synthesis import Scoring
from cdsynth.synth.engine import forward_last, left_pad
from cdsynth.synth.scoring import next_tokens

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
