"""Log-probabilities from a causal LM: the wanted tokens of many sequences, such as candidate strings.

A candidate is scored as the official BabyLM pipeline does: the whole string (prefix + completion) is
tokenized with the tokenizer's special tokens, and the log-probabilities of the tokens whose characters
overlap the completion are summed. Sequences are sorted by length and batched up to a token budget, so
that little padding is computed and short sequences go many to a batch.
Sequences are scored whole, as the official pipeline feeds them, unless the model cannot take them
(`position_limit`); the callers count the ones cut. The candidates of one item that begin with the same
tokens (Entity Tracking's long prompt, EWoK's context) run that prefix once (`shared_batch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from cdsynth.checkpoints import cache_keyword

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


# An item's sequences are scored from one shared prefix when they have at least this many first tokens in
# common; shorter prefixes are not worth the extra pass. Measured on a demo checkpoint with the full data,
# 2 CPU threads (bench/eval_throughput.py): at 8 tokens BLiMP, its supplement and EWoK were ~10% slower
# than whole sequences, at 24 on par, while Entity Tracking's prompts share hundreds of tokens.
MIN_SHARED = 24


@dataclass(frozen=True)
class Shared:
    """Sequences (indices) whose first `prefix` tokens are the same: run once, then each one's rest."""

    members: tuple[int, ...]
    prefix: int


def common_prefix(sequences: list[list[int]]) -> int:
    """How many first tokens all `sequences` share, leaving each at least one token of its own.

    Computed from the token ids, so the token at the boundary is shared only where every whole-string
    tokenization gives the same one.
    """
    shortest = min(len(ids) for ids in sequences)
    for position in range(shortest - 1):
        if any(ids[position] != sequences[0][position] for ids in sequences[1:]):
            return position
    return max(shortest - 1, 0)


def shared_groups(sequences: list[list[int]], groups: list[list[int]]) -> list[Shared]:
    """The groups whose members share at least `MIN_SHARED` first tokens."""
    shared = []
    for group in groups:
        prefix = common_prefix([sequences[i] for i in group]) if len(group) > 1 else 0
        if prefix >= MIN_SHARED:
            shared.append(Shared(tuple(group), prefix))
    return shared


def shared_batches(groups: list[Shared], sequences: list[list[int]], budget: int) -> Iterator[list[Shared]]:
    """Groups longest first, as many to a batch as keep members x (longest member) <= `budget` tokens.

    A member costs what it would whole: its share of the prefix's cache plus its own tokens.
    """
    longest = {group: max(len(sequences[i]) for i in group.members) for group in groups}
    batch: list[Shared] = []
    members = 0
    for group in sorted(groups, key=lambda g: -longest[g]):
        if batch and (members + len(group.members)) * longest[batch[0]] > budget:
            yield batch
            batch, members = [], 0
        batch.append(group)
        members += len(group.members)
    if batch:
        yield batch


def shares_prefixes(model) -> bool:
    """Whether `model`'s KV cache can be run once on a prefix and copied across its sequences.

    Rule: every layer of the cache its forward returns is a plain `DynamicLayer` (full attention, the
    keys and values of every position kept). A sliding-window, linear-attention or other cache is scored
    whole, as before.
    """
    probe = torch.zeros((1, 2), dtype=torch.long, device=model.device)
    with torch.inference_mode():
        out = model.base_model(input_ids=probe, use_cache=True)
    cache = getattr(out, cache_keyword(type(model.base_model)))  # the output names it as forward does
    layers = getattr(cache, "layers", None)
    return isinstance(cache, DynamicCache) and bool(layers) and all(type(x) is DynamicLayer for x in layers)


def whole_batch(body, head, batch, sequences, wanted, pad: int, device) -> torch.Tensor:
    """The wanted log-probabilities of `batch`'s sequences, each scored whole, in batch order."""
    width = len(sequences[batch[0]])
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    targets = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, index in enumerate(batch):
        ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
        targets[row, 1 : len(sequences[index])] = torch.tensor(wanted[index][1:], dtype=torch.bool)
    rows, cols = targets.nonzero(as_tuple=True)
    ids, rows, cols = (to_device(t, device) for t in (ids, rows, cols))
    # No attention mask: the padding is on the right and the model causal, so no scored position sees
    # a pad. A mask would change nothing but cost a host sync (transformers checks it for padding) and
    # keep SDPA off its FlashAttention kernels.
    hidden = body(input_ids=ids, use_cache=False).last_hidden_state
    return picked_logprobs(head, hidden[rows, cols - 1], ids[rows, cols])


def shared_batch(body, head, batch: list[Shared], sequences, wanted, pad: int, device) -> torch.Tensor:
    """The wanted log-probabilities of `batch`'s members, in batch order, each prefix run once.

    The prefixes go through the model together (right-padded, so no mask) and keep their KV cache; the
    cache is copied to each member, whose remaining tokens then run against it: at the positions after
    its own prefix, seeing none of the prefix's padding. A token is predicted from the prefix's hidden
    states when it is inside the prefix or the first after it, else from the member's own pass. Causal
    attention makes this the same computation as the whole sequence.
    """
    members = [(g, i) for g, group in enumerate(batch) for i in group.members]
    starts = torch.tensor([batch[g].prefix for g, _ in members])
    prefix_width = int(starts.max())
    rest_width = max(len(sequences[i]) - batch[g].prefix for g, i in members)
    prefix_ids = torch.full((len(batch), prefix_width), pad, dtype=torch.long)
    for g, group in enumerate(batch):
        prefix_ids[g, : group.prefix] = torch.tensor(sequences[group.members[0]][: group.prefix])
    rest_ids = torch.full((len(members), rest_width), pad, dtype=torch.long)
    picks = []  # per member: (from the prefix pass?, row, column, token) of each wanted token, in order
    for row, (g, i) in enumerate(members):
        ids, prefix = np.asarray(sequences[i]), batch[g].prefix
        rest_ids[row, : len(ids) - prefix] = torch.from_numpy(ids[prefix:])
        positions = np.flatnonzero(wanted[i][1:]) + 1
        inside = positions <= prefix
        rows = np.where(inside, g, row)
        cols = np.where(inside, positions - 1, positions - 1 - prefix)
        picks.append(np.stack([inside, rows, cols, ids[positions]], axis=1))
    picks = torch.from_numpy(np.concatenate(picks)).long() if picks else torch.zeros((0, 4), dtype=torch.long)
    from_prefix = picks[:, 0].bool()
    out = body(input_ids=to_device(prefix_ids, device), use_cache=True)
    parts = [pick_rows(head, out.last_hidden_state, picks[from_prefix], device)]
    if not from_prefix.all():
        cache = getattr(out, cache_keyword(type(body)))
        cache.batch_select_indices(to_device(torch.tensor([g for g, _ in members]), device))
        positions = starts[:, None] + torch.arange(rest_width)
        seen = torch.cat([torch.arange(prefix_width)[None] < starts[:, None], positions >= 0], dim=1)
        # A mask only where the prefixes differ in length: one costs a host sync and SDPA's fast kernels.
        mask = None if bool((starts == prefix_width).all()) else to_device(seen.long(), device)
        hidden = body(
            input_ids=to_device(rest_ids, device),
            **{cache_keyword(type(body)): cache},
            attention_mask=mask,
            position_ids=to_device(positions, device),
            use_cache=True,
        ).last_hidden_state
        parts.append(pick_rows(head, hidden, picks[~from_prefix], device))
    # The prefix pass's picks came first: put every pick back in the members' order.
    back = torch.empty(len(picks), dtype=torch.long)
    back[torch.argsort(~from_prefix, stable=True)] = torch.arange(len(picks))
    return torch.cat(parts)[to_device(back, device)]


def pick_rows(head, hidden: torch.Tensor, picks: torch.Tensor, device) -> torch.Tensor:
    """The log-probabilities of `picks`' (_, row, column, token): the token after hidden[row, column]."""
    rows, cols, tokens = (to_device(picks[:, k].contiguous(), device) for k in (1, 2, 3))
    return picked_logprobs(head, hidden[rows, cols], tokens)


@torch.inference_mode()
def token_logprobs(
    model,
    sequences: list[list[int]],
    wanted: list[list[bool]],
    batch_size: int,
    desc: str = "",
    groups: list[list[int]] | None = None,
) -> list[np.ndarray]:
    """log P(token i | tokens < i) for every i >= 1 with wanted[i], per sequence (float64 arrays).

    `groups` (lists of indices: an item's candidates) may share their first tokens: where they share at
    least `MIN_SHARED`, that prefix runs once (`shared_batch`); everything else is scored whole.
    The output layer runs only on the positions that predict a wanted token: for a long prompt with a
    short completion (Entity Tracking) that is most of the cost of a large vocabulary saved. Batches hold
    up to `batch_size` x the longest length tokens (`token_batches`). Nothing in the loop waits for the
    device: the inputs and the positions to pick are built on the CPU, and the picked log-probabilities
    stay on the device until all batches are done.
    """
    device = model.device
    body, head = model.base_model, model.get_output_embeddings()
    pad = model.config.pad_token_id or 0
    shared = shared_groups(sequences, groups) if groups and shares_prefixes(model) else []
    in_shared = {i for group in shared for i in group.members}
    whole = [i for i in range(len(sequences)) if i not in in_shared]
    budget = batch_size * max((len(s) for s in sequences), default=0)
    work = [
        (False, [whole[k] for k in batch])
        for batch in token_batches([len(sequences[i]) for i in whole], batch_size)
    ]
    work += [(True, batch) for batch in shared_batches(shared, sequences, budget)]
    picked, order = [], []
    for is_shared, batch in tqdm(work, desc=desc, unit="batch", mininterval=10, disable=not desc):
        score = shared_batch if is_shared else whole_batch
        picked.append(score(body, head, batch, sequences, wanted, pad, device))
        order += [i for group in batch for i in group.members] if is_shared else batch
    values = torch.cat(picked).double().cpu().numpy() if picked else np.zeros(0)
    counts = [sum(wanted[i][1:]) for i in order]
    out: list[np.ndarray] = [np.zeros(0)] * len(sequences)
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
