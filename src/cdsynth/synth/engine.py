"""The torch generation engine: an expert and an optional amateur decoding in lock step with KV caches.

Prompts are left-padded so every row's next token sits in the last column; position ids count only real
tokens, so a padded row sees exactly what it would see alone. Each step runs both models on one new token
per row and picks the next token with `cdsynth.synth.scoring.next_tokens`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, StaticCache

from cdsynth.synth.scoring import Scoring, next_tokens


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
    """The name `forward` takes the KV cache under, decided once per model class.

    transformers 5.24 renamed `past_key_values` to `cache` (the old name warns and goes in 5.40); the
    vLLM venv's 5.19 knows only the old one.
    """
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
    """`new_tokens` sampled ids per prompt, shape (len(prompts), new_tokens); greedy if `generator` is None.

    There is no stop at EOS: the paper keeps generating, and the mixture trainer splits on BOS/EOS later.
    The caches are preallocated (static) for the whole length, which spares a concatenation per layer
    and step, and the mask is filled in one column per step.
    """
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
        torch.manual_seed(seed)  # dropout amateurs draw their masks from the global generator
        generator = torch.Generator(self.decoder.device).manual_seed(seed)
        out = []
        for begin in range(0, len(prompts), self.batch_size):
            batch = prompts[begin : begin + self.batch_size]
            out += generate(self.decoder, batch, self.scoring, new_tokens, generator).tolist()
            progress(len(batch) * new_tokens)
        return out
