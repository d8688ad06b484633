"""Synthetic corpora: prompts from the seed split, one Arrow shard per job, a manifest per corpus.

A corpus is named by its synthesis parameters (`corpus_spec.corpus_name`), never by the experiment that
uses it, so experiments that share a corpus share one set of files. Each shard's random stream derives from
(corpus seed, shard index) alone: the same settings rebuild the same token ids on CPU.
"""

from __future__ import annotations

import json
import math
import os
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from cdsynth.errors import ConfigError, DataError
from cdsynth.io import read_arrow, write_arrow
from cdsynth.spec.synthesis import DTYPES, Amateur, Scoring
from cdsynth.synth.engine import TorchEngine
from cdsynth.synth.manifest import SHARD_SCHEMA


@dataclass(frozen=True)
class Protocol:
    """How prompts are made and continued; the defaults are the paper's.

    `prefix_tokens` counts the real tokens after BOS: the authors tokenize seeds with `max_length=20`
    including BOS, which is BOS + 19. `dtype` is the generation precision ("float32": fp32 weights with
    TF32 matmuls on GPU, as the authors generated; "bfloat16").
    """

    tokens: int = 100_000_000
    prefix_tokens: int = 19
    continuations: int = 8
    new_tokens: int = 400
    keep_prefix: bool = True
    shards: int = 20
    batch_size: int = 64
    seed: int = 0
    prompt_seed: int = 42
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")

    @property
    def num_prompts(self) -> int:
        return math.ceil(self.tokens / (self.continuations * self.new_tokens))


class ShardEngine(typing.Protocol):
    """A backend's generator: continuations of every row of a shard, from the shard's seed."""

    def continue_prompts(
        self, prompts: list[list[int]], new_tokens: int, seed: int, progress: Callable[[int], object]
    ) -> list[list[int]]: ...


def shard_seed(corpus_seed: int, shard: int) -> int:
    return int(np.random.SeedSequence([corpus_seed, shard]).generate_state(1, dtype=np.uint64)[0] >> 1)


def read_prompt_texts(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """(ids, texts) from a corpus split (.arrow with `text`, `doc_id`) or a text file, one prompt per line."""
    path = Path(path)
    if path.suffix == ".arrow":
        table = read_arrow(path)
        return table.column("doc_id").to_pylist(), table.column("text").to_pylist()
    if not path.is_file():
        raise DataError(
            f"{path}: prompt file not found. Give a text file (one prompt per line) or a .arrow split."
        )
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [f"line:{i}" for i in range(len(lines))], lines


def make_prompts(
    texts: list[str], ids: list[str], tokenizer, protocol: Protocol
) -> list[tuple[str, list[int]]]:
    """The corpus's prompts in order: shuffled (prompt_seed), BOS + the first `prefix_tokens` tokens."""
    if protocol.num_prompts > len(texts):
        raise DataError(
            f"{protocol.tokens:,} tokens need {protocol.num_prompts:,} prompts "
            f"({protocol.continuations} continuations x {protocol.new_tokens} tokens each), but there are "
            f"only {len(texts):,}. Lower the token budget, raise continuations, or give more prompts "
            "(corpus.seed_fraction)."
        )
    order = np.random.default_rng(protocol.prompt_seed).permutation(len(texts))[: protocol.num_prompts]
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


def protocol_from(params: dict[str, Any]) -> Protocol:
    return Protocol(**{k: params[k] for k in asdict(Protocol()) if k in params})


@contextmanager
def open_engine(
    backend: str,
    *,
    expert_dir: str | os.PathLike,
    amateur_dir: str | os.PathLike | None,
    amateur_dropout: float | None,
    scoring: Scoring,
    protocol: Protocol,
    compile_scoring: bool = False,
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
            max_len=1 + protocol.prefix_tokens + protocol.new_tokens,
            batch_size=protocol.batch_size,
            dtype=protocol.dtype,
            tensor_parallel=tensor_parallel,
            threads=threads,
        ) as engine:
            yield engine, tokenizer
        return
    torch.set_num_threads(threads)
    target = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    decoder, tokenizer = load_decoder(
        expert_dir, amateur_dir, target, amateur_dropout, compile_scoring, dtype=protocol.dtype
    )
    yield TorchEngine(decoder, scoring, protocol.batch_size), tokenizer


def synthesize_shards(
    *,
    expert_dir: str | os.PathLike,
    amateur_dir: str | os.PathLike | None,
    amateur_dropout: float | None,
    prompts_path: str | os.PathLike,
    scoring: Scoring,
    protocol: Protocol,
    shards: dict[int, str | os.PathLike],
    backend: str = "torch",
    compile_scoring: bool = False,
    threads: int = 1,
    device: str = "auto",
    tensor_parallel: int = 1,
) -> list[dict[str, Any]]:
    """Load the pair into a backend once, build the corpus's prompts, and write each shard index -> path."""
    with open_engine(
        backend,
        expert_dir=expert_dir,
        amateur_dir=amateur_dir,
        amateur_dropout=amateur_dropout,
        scoring=scoring,
        protocol=protocol,
        compile_scoring=compile_scoring,
        threads=threads,
        device=device,
        tensor_parallel=tensor_parallel,
    ) as (engine, tokenizer):
        ids, texts = read_prompt_texts(prompts_path)
        prompts = make_prompts(texts, ids, tokenizer, protocol)
        amateur = describe_amateur(amateur_dir, amateur_dropout)
        metadata = {
            "backend": backend,
            "scoring": scoring.as_dict(),
            "protocol": asdict(protocol),
            "expert": str(expert_dir),
            "amateur": amateur,
        }
        print(f"backend {backend}; expert {expert_dir}; amateur {amateur}")
        return [
            generate_shard(engine, tokenizer, prompts, protocol, shard, path, metadata)
            for shard, path in shards.items()
        ]
