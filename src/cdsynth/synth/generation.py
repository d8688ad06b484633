"""Synthetic corpora: prompts from the seed split, one Arrow shard per job, a manifest per corpus.

A corpus is named by its synthesis parameters (`cdsynth.spec.synthesis.corpus_name`), never by the
experiment that uses it, so experiments that share a corpus share one set of files. Each shard's random
stream derives from (corpus seed, shard index) alone: the same settings rebuild the same token ids on CPU.
"""

from __future__ import annotations

import json
import os
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow, write_arrow
from cdsynth.spec.protocol import Protocol
from cdsynth.spec.synthesis import Amateur, Scoring
from cdsynth.synth.engine import TorchEngine
from cdsynth.synth.manifest import SHARD_SCHEMA
from cdsynth.threads import set_torch_threads


class ShardEngine(typing.Protocol):
    """A backend's generator: continuations of every row of a shard, from the shard's seed."""

    def continue_prompts(
        self, prompts: list[list[int]], new_tokens: int, seed: int, progress: Callable[[int], object]
    ) -> list[list[int]]: ...


def shard_seed(corpus_seed: int, shard: int) -> int:
    return int(np.random.SeedSequence([corpus_seed, shard]).generate_state(1, dtype=np.uint64)[0] >> 1)


def read_prompt_texts(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(ids, texts) from an .arrow table with a `text` column (ids from `doc_id`, else the row) or a
    UTF-8 text file, one prompt per line."""
    path = Path(path)
    if path.suffix == ".arrow":
        table = read_arrow(path)
        if "text" not in table.column_names:
            raise DataError(f"{path}: has no `text` column (columns: {', '.join(table.column_names)})")
        texts = table.column("text").to_pylist()
        if "doc_id" in table.column_names:
            return table.column("doc_id").to_pylist(), texts
        return [f"row:{i}" for i in range(len(texts))], texts
    if not path.is_file():
        raise DataError(
            f"{path}: prompt file not found. Give a text file (one prompt per line) or a .arrow split."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (byte {err.start} cannot be decoded). Convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path} > prompts.txt`."
        ) from err
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [f"line:{i}" for i in range(len(lines))], lines


def check_prompt_count(count: int, protocol: Protocol, path: str | os.PathLike) -> None:
    """The protocol's prompts must exist, one shard at least each; refuse before any model is loaded."""
    needed = protocol.prompts_for(count)
    if needed > count:
        raise DataError(
            f"{path}: {protocol.tokens:,} tokens need {needed:,} prompts "
            f"({protocol.continuations} continuations x {protocol.new_tokens} tokens each), but it has "
            f"only {count:,}. Lower the token budget, raise continuations, or give more prompts "
            "(corpus.seed_fraction)."
        )
    if protocol.shards > needed:
        raise DataError(
            f"{path}: {needed:,} prompt(s) for {protocol.shards} shards would leave empty shards; use at "
            f"most {needed} shards"
        )


def make_prompts(
    texts: list[str], ids: list[str], tokenizer, protocol: Protocol
) -> list[tuple[str, list[int]]]:
    """The corpus's prompts in order: shuffled (prompt_seed), BOS + the first `prefix_tokens` tokens."""
    check_prompt_count(len(texts), protocol, "the prompts")
    order = np.random.default_rng(protocol.prompt_seed).permutation(len(texts))
    order = order[: protocol.prompts_for(len(texts))]
    chosen = [texts[i] for i in order]
    encoded = tokenizer(chosen, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return [(ids[i], [bos, *enc[: protocol.prefix_tokens]]) for i, enc in zip(order, encoded)]


def shard_rows(prompts: list, protocol: Protocol, shard: int) -> list[tuple[str, int, list[int]]]:
    """This shard's (prompt id, continuation index, prompt ids) rows: a contiguous slice of the prompts."""
    bounds = np.linspace(0, len(prompts), protocol.shards + 1).round().astype(int)
    mine = prompts[bounds[shard] : bounds[shard + 1]]
    return [(pid, c, ids) for pid, ids in mine for c in range(protocol.continuations)]


def generate_shard(
    engine: ShardEngine,
    tokenizer,
    prompts: list[tuple[str, list[int]]],
    protocol: Protocol,
    shard: int,
    out_path: str | os.PathLike,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Generate shard `shard` of the corpus and write it atomically; returns its summary."""
    rows = shard_rows(prompts, protocol, shard)
    seed = shard_seed(protocol.seed, shard)
    bar = tqdm(
        total=len(rows) * protocol.new_tokens,
        desc=f"shard {shard}",
        unit="tok",
        unit_scale=True,
        mininterval=1 if os.isatty(2) else 15,
    )
    start = time.perf_counter()
    new = engine.continue_prompts([ids for _, _, ids in rows], protocol.new_tokens, seed, bar.update)
    bar.close()
    elapsed = time.perf_counter() - start
    kept = [(ids + cont) if protocol.keep_prefix else cont for (_, _, ids), cont in zip(rows, new)]
    columns = {
        "input_ids": kept,
        # The leading BOS is structure, not text; BOS/EOS generated later stay visible as <s> / </s>.
        "text": tokenizer.batch_decode([k[1:] if protocol.keep_prefix else k for k in kept]),
        "prompt_id": [pid for pid, _, _ in rows],
        "continuation": [cont for _, cont, _ in rows],
        "prefix_len": [len(ids) if protocol.keep_prefix else 0 for _, _, ids in rows],
    }
    info = {"shard": shard, "seed": seed, "rows": len(rows), "new_tokens": len(rows) * protocol.new_tokens}
    # Timing stays out of the file, so the same settings rebuild byte-identical shards.
    schema = SHARD_SCHEMA.with_metadata({"cdsynth": json.dumps(metadata | info, sort_keys=True)})
    write_arrow(pa.Table.from_pydict(columns, schema=schema), out_path)
    speed = info["new_tokens"] / max(elapsed, 1e-9)
    print(f"shard {shard}: {info['new_tokens']:,} new tokens in {elapsed:.1f} s ({speed:,.0f} tokens/s)")
    return info | {"seconds": round(elapsed, 3), "tokens_per_s": round(speed, 1)}


def describe_amateur(amateur_dir: str | os.PathLike | None, amateur_dropout: float | None) -> str | None:
    """The amateur as recorded in a corpus's metadata: its directory, or `dropout:P`."""
    if amateur_dropout is not None:
        return str(Amateur("dropout", dropout=amateur_dropout))
    return None if amateur_dir is None else str(amateur_dir)


def resolve_device(device: str) -> torch.device:
    """`auto` (CUDA if visible, else CPU), `cpu`, `cuda` or `cuda:N`; a device not there is refused."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        target = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device {device!r}: write auto, cpu, cuda or cuda:N") from err
    if target.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: write auto, cpu, cuda or cuda:N")
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if target.type == "cuda" and (target.index or 0) >= visible:
        raise ConfigError(
            f"device {device!r}: this machine has {visible} visible CUDA device(s); use cpu or auto"
        )
    return target


@contextmanager
def open_engine(
    backend: str,
    *,
    expert_dir: str | os.PathLike,
    amateur_dir: str | os.PathLike | None,
    amateur_dropout: float | None,
    scoring: Scoring,
    protocol: Protocol,
    compile_step: bool = False,
    threads: int = 1,
    device: str = "auto",
    tensor_parallel: int = 1,
) -> Iterator[tuple[ShardEngine, Any]]:
    """(engine, tokenizer) for the pair; vLLM is imported only for its backend."""
    from cdsynth.synth.pair import load_decoder, load_pair_tokenizer

    if backend == "vllm":
        if amateur_dropout is not None:
            raise ConfigError(
                "the vLLM backend cannot run a dropout amateur (its attention kernels have no dropout): "
                "use the torch backend for it"
            )
        from cdsynth.synth.vllm_backend import VllmEngine

        tokenizer = load_pair_tokenizer(expert_dir, amateur_dir)
        with VllmEngine(
            expert_dir,
            amateur_dir,
            scoring,
            max_len=protocol.length,
            batch_size=protocol.batch_size,
            dtype=protocol.dtype,
            tensor_parallel=tensor_parallel,
            threads=threads,
        ) as engine:
            yield engine, tokenizer
        return
    set_torch_threads(threads)
    target = resolve_device(device)
    decoder, tokenizer = load_decoder(expert_dir, amateur_dir, target, amateur_dropout, dtype=protocol.dtype)
    yield TorchEngine(decoder, scoring, protocol.batch_size, compile=compile_step), tokenizer


def synthesize_shards(
    *,
    expert_dir: str | os.PathLike,
    amateur_dir: str | os.PathLike | None,
    amateur_dropout: float | None,
    prompts_path: str | os.PathLike,
    scoring: Scoring,
    protocol: Protocol,
    shards: dict[int, str | os.PathLike],
    corpus: dict[str, Any],
    backend: str = "torch",
    compile_step: bool = False,
    threads: int = 1,
    device: str = "auto",
    tensor_parallel: int = 1,
) -> list[dict[str, Any]]:
    """Read the prompts, load the pair into a backend once, and write each shard index -> path.

    `corpus` is the corpus's whole definition as its caller keys it (the rule's params, the CLI's
    settings); every shard records it, so the manifest can refuse a shard made for another corpus.
    """
    ids, texts = read_prompt_texts(prompts_path)
    check_prompt_count(len(texts), protocol, prompts_path)
    with open_engine(
        backend,
        expert_dir=expert_dir,
        amateur_dir=amateur_dir,
        amateur_dropout=amateur_dropout,
        scoring=scoring,
        protocol=protocol,
        compile_step=compile_step,
        threads=threads,
        device=device,
        tensor_parallel=tensor_parallel,
    ) as (engine, tokenizer):
        prompts = make_prompts(texts, ids, tokenizer, protocol)
        amateur = describe_amateur(amateur_dir, amateur_dropout)
        metadata = {
            "corpus": corpus,
            "backend": backend,
            "scoring": scoring.as_dict(),
            "protocol": protocol.as_dict(),
            "expert": str(expert_dir),
            "amateur": amateur,
        }
        print(f"backend {backend}; expert {expert_dir}; amateur {amateur}")
        return [
            generate_shard(engine, tokenizer, prompts, protocol, shard, path, metadata)
            for shard, path in shards.items()
        ]
