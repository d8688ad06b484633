"""Synthesis with vLLM: the pair checkpoint, the plugin registration and the shard engine.

vLLM is imported inside the functions that need it, so the package works without it. The pair
checkpoint is a directory vLLM loads as one model: the expert's config with the architecture
`ContrastivePairForCausalLM` and a `cdsynth_pair` entry (scoring, the amateur's config and directory),
and links to the expert's weights and tokenizer. vLLM reads the amateur's weights from the amateur's own
directory under the prefix `amateur.`, so no weights are copied.

The scoring (temperature, head, contrast, top-k, top-p, min-p, the amateur's temperature) is baked into the
pair and applied in `compute_logits` by `cdsynth.synth.scoring.next_token_scores`, exactly as in the torch
engine; vLLM's sampler then draws from softmax(scores) at temperature 1 with each row's own seed.
`compute_logits` sees hidden states alone, not the rows' tokens, so the repetition penalty and
`no_repeat_ngram` cannot run here: the engine refuses them (`vllm_problem`), as the config checks do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

from cdsynth.errors import ConfigError
from cdsynth.spec.synthesis import Scoring, vllm_problem

ARCHITECTURE = "ContrastivePairForCausalLM"
LINKED = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
# Rows handed to vLLM at once, in units of max_num_seqs: enough to keep its batch full, few enough for a
# live progress bar.
CHUNK_BATCHES = 8
# vLLM's max_num_seqs (rows decoded together) on CUDA, unless the caller or CDSYNTH_VLLM_MAX_NUM_SEQS
# names one. It is not the torch engine's batch size: vLLM pages its KV cache and admits a row only while
# the cache has blocks for it, so its batch is bounded by GPU memory, not by a static cache per batch.
# 1024 is vLLM's own default for offline use on GPUs of 70 GB or more (H100, H200), and about what the
# fp32 base pair's cache holds in 90% of an 80 GB card (~62 MB a row of 420 positions, ~1,100 rows).
CUDA_MAX_NUM_SEQS = 1024
# max_num_seqs on CPU when the batch size is "auto": the torch engine's "auto" there (engine.CPU_BATCH).
CPU_AUTO_ROWS = 64
# On CPU only: no core reserved for the engine and no pinning, so parallel jobs share cores fairly; one
# process for one device (no engine or worker processes to spawn: ~7 s start-up, not ~25 s). On CUDA,
# vLLM's own defaults stand (its engine core in a process of its own overlaps scheduling with the GPU).
CPU_ENVIRONMENT = {
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}


def require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"the vllm backend needs vLLM ({err}): install it with `pip install '.[vllm]'` on a CUDA "
            "machine, or make the CPU environment with `envs/vllm-cpu.sh` and run from it"
        ) from err


def register() -> None:
    """Entry point of the `vllm.general_plugins` group: every vLLM process calls it at start-up."""
    from vllm import ModelRegistry

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, f"cdsynth.synth.vllm_model:{ARCHITECTURE}")


def link_or_copy(source: Path, target: Path) -> None:
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copy2(source, target)


def write_pair_checkpoint(
    expert_dir: str | os.PathLike, amateur_dir: str | os.PathLike | None, scoring: Scoring, out: Path
) -> Path:
    """The pair directory for (expert, amateur, scoring), written into `out`; returns `out`."""
    expert_dir = Path(expert_dir)
    config = json.loads((expert_dir / "config.json").read_text())
    config["architectures"] = [ARCHITECTURE]
    config["cdsynth_pair"] = {"scoring": scoring.as_dict(), "amateur": None, "amateur_dir": None}
    if amateur_dir is not None:
        amateur_dir = Path(amateur_dir).resolve()
        config["cdsynth_pair"]["amateur"] = json.loads((amateur_dir / "config.json").read_text())
        config["cdsynth_pair"]["amateur_dir"] = str(amateur_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    for name in LINKED:
        if (expert_dir / name).exists():
            link_or_copy(expert_dir / name, out / name)
    return out


def kv_cache_bytes(model_dirs: list[Path], tokens: int) -> int:
    """KV cache for `tokens` positions in every model (fp32), doubled for block rounding and slack."""
    per_token = 0
    for path in model_dirs:
        cfg = json.loads((path / "config.json").read_text())
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        kv_heads = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
        per_token += 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * 4
    return 2 * per_token * tokens + 2**26


def scheduling(
    on_gpu: bool, batch_size: int | str, max_num_seqs: int | None, environ: Mapping[str, str]
) -> dict[str, Any]:
    """vLLM's `max_num_seqs` and `enforce_eager` for this device.

    max_num_seqs: the argument, else CDSYNTH_VLLM_MAX_NUM_SEQS, else on CUDA `CUDA_MAX_NUM_SEQS` and on
    CPU the protocol's batch size (`CPU_AUTO_ROWS` for "auto"), which sizes the CPU KV cache.
    CUDA graphs: on by default on CUDA, off on CPU; CDSYNTH_VLLM_CUDA_GRAPHS=1 or 0 says otherwise.
    """
    rows = max_num_seqs or int(environ.get("CDSYNTH_VLLM_MAX_NUM_SEQS") or 0)
    if not rows:
        rows = CUDA_MAX_NUM_SEQS if on_gpu else (CPU_AUTO_ROWS if batch_size == "auto" else int(batch_size))
    graphs = environ.get("CDSYNTH_VLLM_CUDA_GRAPHS", "1" if on_gpu else "0") == "1"
    return {"max_num_seqs": rows, "enforce_eager": not graphs}


def apply_cpu_environment(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set `CPU_ENVIRONMENT`'s variables the user has not set; returns what it set."""
    chosen = {name: value for name, value in CPU_ENVIRONMENT.items() if name not in environ}
    environ.update(chosen)
    return chosen


def request_seeds(seed: int, rows: int) -> list[int]:
    """One sampling seed per row, derived from the shard's seed: rows are independent of batching."""
    return [int(s >> 1) for s in np.random.SeedSequence(seed).generate_state(rows, dtype=np.uint64)]


class VllmEngine:
    """A vLLM engine for one pair and scoring; a context manager that shuts the engine down on exit."""

    def __init__(
        self,
        expert_dir: str | os.PathLike,
        amateur_dir: str | os.PathLike | None,
        scoring: Scoring,
        max_len: int,
        batch_size: int | str = 64,
        tensor_parallel: int = 1,
        threads: int = 1,
        dtype: str = "float32",
        max_num_seqs: int | None = None,
    ) -> None:
        """`batch_size` is the protocol's (a row count or "auto"); vLLM's rows in flight are
        `max_num_seqs`, chosen by `scheduling` (on CUDA independent of `batch_size`)."""
        import torch

        if vllm_problem(scoring):
            raise ConfigError(vllm_problem(scoring))
        on_gpu = torch.cuda.is_available()
        if not on_gpu:
            apply_cpu_environment(os.environ)  # before vLLM is imported: it reads them then
        require_vllm()
        from vllm import LLM

        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision("high")  # float32 generates as the authors did: TF32 matmuls
        self.batch_size = batch_size
        options = scheduling(on_gpu, batch_size, max_num_seqs, os.environ)
        self.max_num_seqs = options["max_num_seqs"]
        self._workdir = tempfile.TemporaryDirectory(prefix="cdsynth-pair-")
        pair = write_pair_checkpoint(expert_dir, amateur_dir, scoring, Path(self._workdir.name))
        models = [Path(expert_dir)] + ([Path(amateur_dir)] if amateur_dir is not None else [])
        self.llm = LLM(
            model=str(pair),
            tensor_parallel_size=tensor_parallel,
            distributed_executor_backend="uni" if tensor_parallel == 1 else "mp",
            dtype=dtype,
            max_model_len=max_len,
            kv_cache_memory_bytes=None if on_gpu else kv_cache_bytes(models, self.max_num_seqs * max_len),
            skip_tokenizer_init=True,  # prompts arrive as token ids and come back as ids
            seed=0,
            disable_log_stats=True,
            **options,
        )

    def close(self) -> None:
        """Stop the engine and free its KV cache, so that another engine can start in this process."""
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
        cleanup_dist_env_and_memory()
        self._workdir.cleanup()

    def __enter__(self) -> VllmEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def generate(self, prompts: list[list[int]], new_tokens: int, seeds: list[int] | None) -> list[list[int]]:
        """`new_tokens` ids per prompt, without stopping at EOS; greedy when `seeds` is None."""
        from vllm import SamplingParams, TokensPrompt

        def params(seed: int | None) -> SamplingParams:
            return SamplingParams(
                temperature=0.0 if seed is None else 1.0,
                seed=seed,
                max_tokens=new_tokens,
                ignore_eos=True,  # with no stop token, every row gets exactly max_tokens
                detokenize=False,
            )

        requests = [TokensPrompt(prompt_token_ids=p) for p in prompts]
        sampling = [params(seed) for seed in (seeds if seeds is not None else [None] * len(prompts))]
        outputs = self.llm.generate(requests, sampling, use_tqdm=False)
        return [list(out.outputs[0].token_ids) for out in outputs]

    def continue_prompts(
        self, prompts: list[list[int]], new_tokens: int, seed: int, progress: Callable[[int], object]
    ) -> list[list[int]]:
        """The shard contract of `cdsynth.synth.generation.ShardEngine`: row i samples with
        `request_seeds(seed)[i]`."""
        seeds = request_seeds(seed, len(prompts))
        chunk = CHUNK_BATCHES * self.max_num_seqs
        out = []
        for begin in range(0, len(prompts), chunk):
            part = prompts[begin : begin + chunk]
            out += self.generate(part, new_tokens, seeds[begin : begin + chunk])
            progress(len(part) * new_tokens)
        return out
