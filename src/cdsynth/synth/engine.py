"""The torch generation engine: an expert and an optional amateur decoding in lock step with KV caches.

Prompts are left-padded so every row's next token sits in the last column; position ids count only real
tokens, so a padded row sees exactly what it would see alone. The prompts are prefilled eagerly; every
later step (both models on one new token per row, `cdsynth.synth.scoring.next_tokens`, the draw) is one
function, `decode_step`. With `compile=True` it is compiled once into one graph (CUDA graphs on CUDA) that
every step of every batch replays, which is why the engine keeps its caches and buffers for its whole
life, gives every batch of a shard one shape (the short last batch is filled with copies of a real row),
and never waits for the device inside the loop.

Attention reads only the live prefix of the caches (`LivePrefixCache`): the columns written so far,
rounded up to a multiple of `LIVE_BUCKET`, not the whole static buffer. The compiled step takes that
length as a symbolic size, so two compilations (the first bucket static, then one symbolic graph) serve
every bucket (on CUDA, one CUDA graph is recorded per bucket).

Sampling draws one uniform per (row, step) from the shard's CPU generator, row after row, so a row's draws
do not depend on how the rows are batched, on the batch size, or on the padding rows.

The repetition controls read each row's history (`History`): the tokens it holds and those it generated
stay on the device and the step updates them in place, so they add no host sync and no graph of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch._inductor.config
from transformers import PreTrainedConfig, PreTrainedModel, StaticCache

from cdsynth.checkpoints import cache_keyword
from cdsynth.synth.scoring import Scoring, next_tokens, repeated_ngram_bans

CPU_BATCH = 64  # "auto" on CPU: larger batches gain nothing once the matmuls fill the cores
MEMORY_SHARE = 0.8  # of the free GPU memory given to caches and scoring buffers ("auto" on CUDA)
LIVE_BUCKET = 32  # columns: attention reads the caches up to the next multiple of this past the newest token


@dataclass
class Decoder:
    """Expert and amateur (None for methods without one), with the pad id of their shared tokenizer."""

    expert: PreTrainedModel
    amateur: PreTrainedModel | None
    pad_id: int

    @property
    def device(self) -> torch.device:
        return self.expert.device


def left_pad(
    prompts: list[list[int]], pad_id: int, device: torch.device, width: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) with every prompt right-aligned in `width` columns (default: the longest)."""
    width = width or max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


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


class LivePrefixCache(StaticCache):
    """A static cache whose attention reads only its first `live` columns.

    Keys and values stay in one buffer allocated once (CUDA graphs replay on fixed addresses); only how much
    of it the attention reads changes. Columns past `live` hold nothing the step may see, so the masked
    attention over the whole buffer and over the prefix agree up to the order of float sums (logits within
    1e-5); the eager and compiled engines both read the prefix, so they stay identical to each other.
    """

    def __init__(self, config: PreTrainedConfig, max_cache_len: int) -> None:
        super().__init__(config=config, max_cache_len=max_cache_len)
        self.live = max_cache_len

    def update(
        self, key_states, value_states, layer_idx, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = super().update(key_states, value_states, layer_idx, *args, **kwargs)
        return keys[:, :, : self.live], values[:, :, : self.live]

    def get_mask_sizes(self, query_length: int, layer_idx: int) -> tuple[int, int]:
        return self.live, 0

    def visible(self, mask: torch.Tensor) -> torch.Tensor:
        """The columns of a (rows, columns) attention mask that attention reads: models with ALiBi (Falcon,
        BLOOM) build their bias from the mask, whose columns must then match the keys'."""
        return mask[:, : self.live]


def live_columns(filled: int, limit: int) -> int:
    """Columns attention reads once `filled` columns hold keys: the next multiple of LIVE_BUCKET, at most
    `limit`."""
    return min(limit, math.ceil(filled / LIVE_BUCKET) * LIVE_BUCKET)


@dataclass
class History:
    """What the repetition controls read of each row, on the device: the generated tokens (`tokens`, the
    engine's output buffer, of which the first `length` columns are filled) and which ids the row holds
    (`seen`, prompt included; None unless the scoring has a repetition penalty)."""

    tokens: torch.Tensor  # (rows, new_tokens)
    length: torch.Tensor  # (1,)
    seen: torch.Tensor | None  # (rows, vocab) bool

    def start(self, ids: torch.Tensor, prompt_mask: torch.Tensor) -> None:
        """A new batch: nothing generated, and the prompts' ids seen (padding is not)."""
        self.length.zero_()
        if self.seen is not None:
            # Padding columns repeat the row's last prompt token, which is real (prompts are left-padded).
            real = torch.where(prompt_mask.bool(), ids, ids[:, -1:])
            self.seen.zero_().scatter_(1, real, True)

    def observe(self, token: torch.Tensor) -> None:
        """`token`, already written at column `length` of `tokens`, joins each row's history."""
        self.length.add_(1)
        if self.seen is not None:
            self.seen.scatter_(1, token[:, None], True)

    def masks(self, scoring: Scoring, vocab: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(seen, banned) for `cdsynth.synth.scoring.next_tokens`."""
        n = scoring.no_repeat_ngram
        banned = None if n is None else repeated_ngram_bans(self.tokens, self.length, n, vocab)
        return self.seen, banned


def decode_step(
    models: list[PreTrainedModel],
    caches: list[LivePrefixCache],
    scoring: Scoring,
    token: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    where: torch.Tensor,
    uniform: torch.Tensor | None,
    history: History,
) -> torch.Tensor:
    """Feed `token` (one per row) at the next cache column and return the following one.

    `mask`, `positions`, `where` (the cache column, shape (1,)) and `history` are advanced in place on the
    device, so the step needs no host value and a compiled graph of it can be replayed unchanged.
    """
    where.add_(1)
    positions.add_(1)
    mask.index_fill_(1, where, 1)
    history.observe(token)
    logits = [
        forward_last(m, token[:, None], c.visible(mask), positions, c, where) for m, c in zip(models, caches)
    ]
    controls = history.masks(scoring, logits[0].shape[-1])
    return next_tokens(logits[0], logits[1] if len(logits) > 1 else None, scoring, uniform, *controls)


def cache_bytes_per_row(model: PreTrainedModel, length: int) -> int:
    """Bytes of keys and values one row of a static cache of `length` positions takes."""
    config = model.config.get_text_config()
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * heads * head_dim * length * model.dtype.itemsize


def auto_batch_size(models: list[PreTrainedModel], length: int) -> int:
    """Rows per batch: 64 on CPU; on CUDA as many as the free memory holds (a multiple of 64).

    A row costs its static caches plus the scoring's per-row buffers (a few float32 and float64 copies
    of the vocabulary: ~64 bytes per entry); activations of one token per row are small beside them.
    """
    device = models[0].device
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    per_row = sum(cache_bytes_per_row(m, length) for m in models) + 64 * models[0].config.vocab_size
    rows = int(free * MEMORY_SHARE) // per_row
    return max(64, rows // 64 * 64) if rows >= 64 else max(1, rows)


def batch_shape(rows: int, batch_size: int) -> tuple[int, int]:
    """(number of batches, rows per batch) for `rows` rows: as few batches as `batch_size` allows, of
    equal size, so the last is padded by at most one row per batch rather than up to a whole batch."""
    batches = math.ceil(rows / batch_size)
    return batches, math.ceil(rows / batches)


@dataclass
class Buffers:
    """Device state of one batch shape, allocated once: the caches and what the decode step advances."""

    caches: list[LivePrefixCache]
    mask: torch.Tensor  # (rows, width + new_tokens + 1), as wide as the caches
    positions: torch.Tensor  # (rows, 1): position id of each row's newest token
    where: torch.Tensor  # (1,): cache column of the newest token
    out: torch.Tensor  # (rows, new_tokens)
    history: History  # reads `out`

    @classmethod
    def allocate(
        cls, models: list[PreTrainedModel], rows: int, width: int, new_tokens: int, seen: bool
    ) -> Buffers:
        """`seen`: keep which ids each row holds (for a repetition penalty)."""
        device = models[0].device
        # One spare column: a live prefix never spans the whole buffer, for a slice that does is contiguous,
        # which the compiler would specialise into a graph of its own.
        columns = width + new_tokens + 1
        out = torch.empty((rows, new_tokens), dtype=torch.long, device=device)
        vocab = models[0].config.get_text_config().vocab_size
        history = History(
            tokens=out,
            length=torch.zeros((1,), dtype=torch.long, device=device),
            seen=torch.zeros((rows, vocab), dtype=torch.bool, device=device) if seen else None,
        )
        buffers = cls(
            caches=[LivePrefixCache(m.config, max_cache_len=columns) for m in models],
            mask=torch.zeros((rows, columns), dtype=torch.long, device=device),
            positions=torch.zeros((rows, 1), dtype=torch.long, device=device),
            where=torch.zeros((1,), dtype=torch.long, device=device),
            out=out,
            history=history,
        )
        # Fixed addresses: a CUDA graph may mutate them in place and replay on the same memory.
        static = [buffers.mask, buffers.positions, buffers.where, out, history.length, history.seen]
        for tensor in static:
            if tensor is not None:
                torch._dynamo.mark_static_address(tensor)
        return buffers

    def attend(self, columns: int) -> None:
        """Let the next forward's attention read the first `columns` columns of every cache."""
        for cache in self.caches:
            cache.live = columns


@dataclass
class TorchEngine:
    """The torch backend for a synthetic shard: batches of rows decoded with one compiled or eager step.

    `batch_size` is a row count or "auto" (`auto_batch_size`). One engine serves any number of batches and
    shards; its buffers are reallocated only when the batch shape changes.
    """

    decoder: Decoder
    scoring: Scoring
    batch_size: int | str = "auto"
    compile: bool = False
    _buffers: dict[tuple[int, int, int], Buffers] = field(default_factory=dict, init=False, repr=False)
    _step: Callable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.models = [self.decoder.expert]
        if self.scoring.needs_amateur:
            self.models.append(self.decoder.amateur)
        for model in self.models:
            cache_keyword(type(model))  # decided here, outside any traced step
        self.cuda_graphs = self.compile and self.decoder.device.type == "cuda"
        self._step = decode_step
        if self.compile:
            # Every engine's scoring and shapes are a new specialisation of the one `decode_step`; past
            # dynamo's default of 8 per function it would fall back to eager without a word.
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
            # A CUDA graph per live-prefix bucket is the design, not a symptom to warn about.
            torch._inductor.config.triton.cudagraph_dynamic_shape_warn_limit = None
            mode = "reduce-overhead" if self.cuda_graphs else None
            # dynamic=None: the first bucket compiles static; the second makes the live length symbolic,
            # after which every bucket replays the same graph (shapes that never change stay static).
            self._step = torch.compile(decode_step, mode=mode, dynamic=None)

    def rows_per_batch(self, length: int) -> int:
        if self.batch_size == "auto":
            return auto_batch_size(self.models, length)
        return int(self.batch_size)

    def buffers(self, rows: int, width: int, new_tokens: int) -> Buffers:
        key = (rows, width, new_tokens)
        if key not in self._buffers:
            self._buffers.clear()  # one shape at a time: free the old caches first
            seen = self.scoring.repetition_penalty != 1
            self._buffers[key] = Buffers.allocate(self.models, rows, width, new_tokens, seen)
        return self._buffers[key]

    @torch.inference_mode()
    def decode(
        self, prompts: list[list[int]], new_tokens: int, uniforms: torch.Tensor | None, width: int
    ) -> torch.Tensor:
        """`new_tokens` ids per prompt (rows, new_tokens), drawn with `uniforms` (rows, new_tokens) on the
        CPU, or greedy if None; prompts are left-padded to `width` columns."""
        rows = len(prompts)
        state = self.buffers(rows, width, new_tokens)
        device = self.decoder.device
        ids, prompt_mask = left_pad(prompts, self.decoder.pad_id, device, width)
        if uniforms is not None:
            uniforms = uniforms.to(device, non_blocking=True)
        for cache in state.caches:
            cache.reset()
        state.mask.zero_()
        state.mask[:, :width] = prompt_mask
        prompt_positions = (prompt_mask.cumsum(dim=-1) - 1).clamp(min=0)
        state.positions.copy_(prompt_positions[:, -1:])
        state.where.fill_(width - 1)
        state.attend(width)
        state.history.start(ids, prompt_mask)
        columns = torch.arange(width, device=device)
        logits = [
            forward_last(m, ids, c.visible(state.mask), prompt_positions, c, columns)
            for m, c in zip(self.models, state.caches)
        ]
        draw = None if uniforms is None else uniforms[:, :1]
        controls = state.history.masks(self.scoring, logits[0].shape[-1])
        token = next_tokens(logits[0], logits[1] if len(logits) > 1 else None, self.scoring, draw, *controls)
        state.out[:, 0] = token
        for step in range(1, new_tokens):
            if self.cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            draw = None if uniforms is None else uniforms[:, step : step + 1]
            state.attend(live_columns(width + step, width + new_tokens))
            token = self._step(
                self.models,
                state.caches,
                self.scoring,
                token,
                state.mask,
                state.positions,
                state.where,
                draw,
                state.history,
            )
            state.out[:, step] = token
            if self.cuda_graphs:
                token = token.clone()  # the next replay overwrites the graph's output memory
        return state.out.clone()

    def continue_prompts(
        self, prompts: list[list[int]], new_tokens: int, seed: int, progress: Callable[[int], object]
    ) -> list[list[int]]:
        """`new_tokens` sampled ids per prompt; `progress` hears of every finished batch's tokens."""
        torch.manual_seed(seed)  # dropout amateurs draw their masks from the global generator
        generator = torch.Generator().manual_seed(seed)
        width = max(len(p) for p in prompts)
        _, rows = batch_shape(len(prompts), self.rows_per_batch(width + new_tokens))
        out: list[list[int]] = []
        for begin in range(0, len(prompts), rows):
            batch = prompts[begin : begin + rows]
            uniforms = torch.rand((len(batch), new_tokens), generator=generator)
            filler = rows - len(batch)  # copies of the last row keep the shape; their draws are unused
            batch = batch + [batch[-1]] * filler
            uniforms = torch.cat([uniforms, uniforms[-1:].expand(filler, -1)])
            out += self.decode(batch, new_tokens, uniforms, width)[: rows - filler].tolist()
            progress((rows - filler) * new_tokens)
        return out


def generate(
    decoder: Decoder,
    prompts: list[list[int]],
    scoring: Scoring,
    new_tokens: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One eager batch: `new_tokens` ids per prompt, drawn from the CPU `generator`, or greedy if None."""
    uniforms = None if generator is None else torch.rand((len(prompts), new_tokens), generator=generator)
    engine = TorchEngine(decoder, scoring, batch_size=len(prompts))
    return engine.decode(prompts, new_tokens, uniforms, max(len(p) for p in prompts))
