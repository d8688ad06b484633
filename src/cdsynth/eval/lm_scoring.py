"""Log-probabilities from a causal LM: completion spans of candidate strings, and document NLLs.

A candidate is scored as the official BabyLM pipeline does: the whole string (prefix + completion) is
tokenized with the tokenizer's special tokens, and the log-probabilities of the tokens whose characters
overlap the completion are summed. Sequences are sorted by length and batched up to a token budget, so
that little padding is computed and short sequences go many to a batch.
Sequences are scored whole, as the official pipeline feeds them, unless the model cannot take them
(`position_limit`); the callers count the ones cut.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

# Rows of vocabulary-sized logits computed at once (8192 x 32000 float32: 1 GB), whatever the batch.
LOGIT_ROWS = 8192


def encode_candidates(tokenizer, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[bool]]]:
    """(token ids, scored?) per (prefix, completion): a token counts if its span overlaps the completion."""
    texts = [prefix + completion for prefix, completion in pairs]
    encoded = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True)
    out = []
    for ids, offsets, (prefix, completion) in zip(encoded["input_ids"], encoded["offset_mapping"], pairs):
        start, end = len(prefix), len(prefix) + len(completion)
        out.append((ids, [s < end and e > start and e > s for s, e in offsets]))
    return out


def token_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices sorted longest first, grouped so that rows x width (the longest) <= a token budget.

    The budget is `batch_size` sequences of the longest length: the batch of the longest sequences is
    `batch_size` rows, as `eval.batch_size` says, and shorter ones go more to a batch without needing more
    memory (a batch's activations grow with its rows x width).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    budget = batch_size * max(lengths, default=0)
    batch: list[int] = []
    for index in order:
        if batch and (len(batch) + 1) * lengths[batch[0]] > budget:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A copy that the host does not wait for on CUDA (from pinned memory); the tensor itself on the CPU."""
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor


def picked_logprobs(head, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log_softmax(head(hidden))[tokens] per row, LOGIT_ROWS rows at a time so that memory stays bounded.

    The logits are taken in float32 at least (a float64 model keeps float64).
    """
    parts = []
    for start in range(0, len(tokens), LOGIT_ROWS):
        logits = head(hidden[start : start + LOGIT_ROWS])
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        rows = tokens[start : start + LOGIT_ROWS, None]
        parts.append(torch.log_softmax(logits, dim=-1).gather(-1, rows).squeeze(-1))
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


@torch.inference_mode()
def token_logprobs(
    model, sequences: list[list[int]], wanted: list[list[bool]], batch_size: int, desc: str = ""
) -> list[np.ndarray]:
    """log P(token i | tokens < i) for every i >= 1 with wanted[i], per sequence (float64 arrays).

    The output layer runs only on the positions that predict a wanted token: for a long prompt with a
    short completion (Entity Tracking) that is most of the cost of a large vocabulary saved. Batches hold
    up to `batch_size` x the longest length tokens (`token_batches`). Nothing in the loop waits for the
    device: the inputs and the positions to pick are built on the CPU, and the picked log-probabilities
    stay on the device until all batches are done.
    """
    device = model.device
    body, head = model.base_model, model.get_output_embeddings()
    pad = model.config.pad_token_id or 0
    batches = list(token_batches([len(s) for s in sequences], batch_size))
    picked, counts = [], []
    for batch in tqdm(batches, desc=desc, unit="batch", mininterval=10, disable=not desc):
        width = len(sequences[batch[0]])
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        targets = torch.zeros((len(batch), width), dtype=torch.bool)
        for row, index in enumerate(batch):
            ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
            targets[row, 1 : len(sequences[index])] = torch.tensor(wanted[index][1:], dtype=torch.bool)
        rows, cols = targets.nonzero(as_tuple=True)
        counts += targets.sum(dim=1).tolist()
        ids, rows, cols = (to_device(t, device) for t in (ids, rows, cols))
        # No attention mask: the padding is on the right and the model causal, so no scored position sees
        # a pad. A mask would change nothing but cost a host sync (transformers checks it for padding) and
        # keep SDPA off its FlashAttention kernels.
        hidden = body(input_ids=ids, use_cache=False).last_hidden_state
        picked.append(picked_logprobs(head, hidden[rows, cols - 1], ids[rows, cols]))
    values = torch.cat(picked).double().cpu().numpy() if picked else np.zeros(0)
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
    order = [index for batch in batches for index in batch]
    for index, chunk in zip(order, np.split(values, np.cumsum(counts)[:-1])):
        out[index] = chunk
    return out


def position_limit(model) -> int | None:
    """The longest sequence `model` can score, or None when it takes any length.

    Rule: a model with a rotary position module (a module class named "*Rotary*": LLaMA, Mistral, Qwen,
    GPT-NeoX, Phi, ...) computes its position encodings for any position, so it gets whole sequences, as
    the official pipeline feeds them. Every other model is taken to hold a learned table of
    `max_position_embeddings` absolute positions (GPT-2, OPT), which an index past its end would break.
    """
    if any("Rotary" in type(module).__name__ for module in model.modules()):
        return None
    return model.config.max_position_embeddings


def fit_context(
    sequences: list[list[int]], wanted: list[list[bool]], limit: int | None
) -> tuple[list[list[int]], list[list[bool]], int]:
    """(sequences, wanted, how many were cut): the oldest tokens of those over `limit` dropped.

    The scored end is kept; `limit` None keeps every sequence whole.
    """
    if limit is None:
        return sequences, wanted, 0
    cut = sum(len(ids) > limit for ids in sequences)
    return [ids[-limit:] for ids in sequences], [mask[-limit:] for mask in wanted], cut


def completion_logprobs(
    model, tokenizer, pairs: list[tuple[str, str]], batch_size: int, desc: str = ""
) -> tuple[np.ndarray, int]:
    """(summed log-probability of each completion given its prefix, sequences cut to fit the model)."""
    encoded = encode_candidates(tokenizer, pairs)
    ids, wanted, cut = fit_context(
        [ids for ids, _ in encoded], [mask for _, mask in encoded], position_limit(model)
    )
    logprobs = token_logprobs(model, ids, wanted, batch_size, desc)
    return np.array([float(lp.sum()) for lp in logprobs]), cut


def next_token_logprobs(
    model, tokenizer, queries: list[tuple[str, int]], batch_size: int, desc: str = ""
) -> tuple[np.ndarray, int]:
    """(log P(token | context) per (context, token id), sequences cut to fit the model).

    The context is tokenized with the tokenizer's special tokens and the token appended, so the one
    scored position is the model's prediction at the end of the tokenized context.
    """
    contexts = tokenizer([context for context, _ in queries])["input_ids"]
    sequences = [[*ids, token] for ids, (_, token) in zip(contexts, queries)]
    wanted = [[False] * len(ids) + [True] for ids in contexts]
    sequences, wanted, cut = fit_context(sequences, wanted, position_limit(model))
    logprobs = token_logprobs(model, sequences, wanted, batch_size, desc)
    return np.array([float(lp[-1]) for lp in logprobs]), cut


def document_nlls(model, documents: list[list[int]], window: int, batch_size: int) -> list[tuple[float, int]]:
    """(summed NLL, predicted tokens) per document, every token after the first predicted once.

    Documents longer than `window` are cut into windows that overlap by one token, so each window's first
    token is only context and every later token is predicted exactly once.
    """
    pieces, owners = [], []
    for doc, tokens in enumerate(documents):
        for start in range(0, max(1, len(tokens) - 1), window - 1):
            pieces.append(tokens[start : start + window])
            owners.append(doc)
    logprobs = token_logprobs(model, pieces, [[True] * len(p) for p in pieces], batch_size, desc="perplexity")
    totals = [[0.0, 0] for _ in documents]
    for owner, lp in zip(owners, logprobs):
        totals[owner][0] -= float(lp.sum())
        totals[owner][1] += len(lp)
    return [(nll, count) for nll, count in totals]
