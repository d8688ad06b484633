"""One short GPU window: device ceilings, both torch engines, the trainer and evaluation, each in its own
capped subprocess, with every result appended to a JSON-lines file the moment it exists.

On the device (about 8 minutes with the default --budget 480; the machine's start comes on top):

    PYTHONPATH=src python bench/gpu_window.py --out $OUT/gpu_window.jsonl

On a CPU, as a dry run of every phase with a tiny pair (what tests/bench/test_gpu_window.py runs; about
1-2 minutes on 2 idle cores, most of it the ten children importing torch and transformers). torch.compile
is disabled in its children (TORCH_COMPILE_DISABLE=1, and each line says so) unless --smoke-compile is
given, because compiling on a CPU takes minutes; every code path still runs:

    PYTHONPATH=src python bench/gpu_window.py --smoke --out /tmp/gpu_window.jsonl

It needs only the repository and the device's own torch and transformers: every phase imports what it
uses inside its own function, and none needs datasets, snakemake, jsonschema, matplotlib or pyarrow (the
trainer phase takes the trainer's own loss module from `cdsynth.train.trainer` where that imports, which
pulls matplotlib and pyarrow, and transformers' loss where it does not; its line says which).
The output file (default $OUT/gpu_window.jsonl if OUT is set, else bench/gpu_window.jsonl) gets one line
per measurement, tagged with the run id and phase; the children's stderr goes to the same name with
`.log`. A phase that fails or overruns its cap gets an `error` line and the script goes on.

Phases, in order of value (cap on the GPU in seconds; the budget cuts the last ones short):

| phase              | cap | measures                                                               |
|--------------------|-----|------------------------------------------------------------------------|
| ceilings           |  25 | copy GB/s (device to device, pinned host to device); matmul TFLOP/s    |
| compiled_cd        | 180 | the engine now, compiled (one CUDA graph per step), CD, at --batches   |
| before_cd          | 100 | the engine before the GPU issue (bench/engine_before.py), CD           |
| trainer            | 100 | compiled fwd+bwd+fused AdamW, bf16 autocast, 16 x 1024: tokens/s, MFU  |
| eval               |  50 | `token_logprobs` on a BabyLM-shaped sample: s per checkpoint, fp32+bf16 |
| profile            |  60 | torch.profiler, one compiled CD batch: attention kernels, syncs / step |
| compiled_ancestral | 140 | the engine now, compiled, ancestral sampling                           |
| before_ancestral   |  60 | the engine before, ancestral                                           |
| eager_cd           |  80 | the engine now without compile, CD                                     |
| eager_ancestral    |  60 | the engine now without compile, ancestral                              |

The pair is the paper's base model twice (LLaMA 12 x 768, 12 heads, intermediate 3072, vocabulary 32,000,
built by `cdsynth.train.models.llama_config`), random weights (the amateur stands for an earlier
checkpoint of the same architecture); prompts are BOS + 19 tokens, continued by 400 new tokens, in
`--engine-dtype` (float32 with TF32 matmuls, the paper preset's), at `--batches` rows (default
2048,1024,256; `auto` is the paper preset's: as many as fit). Throughput is new tokens per second of one
whole batch after warm-up. The compiled engine's first batch compiles for that shape, so its batch time is
the measured one with its first steps (compile, graph capture) replaced by the steady step time read off
per-step CUDA events; its prefill (one 20-token forward, <1% of a batch) is left out. The engine before
compiles its token picker per batch shape, as the paper preset's `synth.compile: true` did then.
Goals printed beside the figures: CD >= 50,000 new tokens/s (stretch 100,000), trainer >= 40% MFU,
the whole BabyLM suite <= 20 s per checkpoint.

Rerun a subset with `--phases compiled_ancestral,before_ancestral` (same --out: lines carry a run id).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("cdsynth") is None:  # the package is not installed on the device
    sys.path.insert(0, str(REPO / "src"))

# Vendor datasheet figures (dense bf16 tensor TFLOP/s, HBM GB/s), by a substring of the device's name; the
# first match wins, so the PCIe H100 comes before the SXM one ("NVIDIA H100 80GB HBM3").
SPECS = {
    "H200": {"bf16_tflops": 989.0, "hbm_gbs": 4800.0},
    "H100 PCIe": {"bf16_tflops": 756.0, "hbm_gbs": 2000.0},
    "H100": {"bf16_tflops": 989.0, "hbm_gbs": 3350.0},
    "A100": {"bf16_tflops": 312.0, "hbm_gbs": 2039.0},
}
GOALS = {"cd_tokens_per_s": 50_000, "cd_stretch": 100_000, "mfu": 0.40, "eval_s_per_checkpoint": 20.0}

BASE = {"layers": 12, "hidden": 768, "heads": 12, "intermediate": 3072, "max_positions": 2048}
TINY = {"layers": 2, "hidden": 64, "heads": 4, "intermediate": 256, "max_positions": 128}
BOS, PAD = 1, 3  # cdsynth's tokenizer ids (cdsynth.data.tokenizer)
PAPER_CORPUS_TOKENS = 97_280_000  # one paper corpus: ~30.4K seed prompts x 8 continuations x 400 tokens

# The BabyLM 2025 zero-shot suite as cdsynth.eval scores it: (sequences, mean tokens, scored tokens per
# sequence). Sequences are every candidate of every item (Reading: the distinct queries of the official
# predictor), counted on ../shared/data/babylm2025_eval with the demo's 2,000-piece tokenizer; a 32,000-piece
# vocabulary makes shorter sequences, so the estimate errs long. Perplexity is not part of the suite.
SUITE = {
    "blimp": (119_750, 18, 17),
    "blimp_supplement": (10_436, 27, 26),
    "ewok": (15_236, 30, 13),
    "entity_tracking": (47_415, 240, 8),
    "wug": (400, 28, 27),
    "reading": (2_668, 11, 1),
}


@dataclass(frozen=True)
class Phase:
    name: str
    cap_s: float  # on the GPU; --smoke gives every phase SMOKE_CAP_S


PHASES = [
    Phase("ceilings", 25),
    Phase("compiled_cd", 180),
    Phase("before_cd", 100),
    Phase("trainer", 100),
    Phase("eval", 50),
    Phase("profile", 60),
    Phase("compiled_ancestral", 140),
    Phase("before_ancestral", 60),
    Phase("eager_cd", 80),
    Phase("eager_ancestral", 60),
]
SMOKE_CAP_S = 900  # a guard against a hung phase: a CPU shared with other work can be slow
MIN_PHASE_S = 20  # a phase gets no start with less of the budget left


@dataclass
class Settings:
    """What the phases run: the paper's sizes on the GPU, a tiny pair on the CPU for --smoke."""

    device: str
    arch: dict
    vocab: int
    batches: list[int | str]
    new_tokens: int
    prompt_tokens: int  # BOS + prefix
    engine_dtype: str
    profile_batch: int
    profile_tokens: int
    train_micro: int
    train_block: int
    train_accum: int
    train_steps: int
    eval_fraction: float
    eval_batch: int
    copy_mb: int
    matmul_n: int


def make_settings(args: argparse.Namespace) -> Settings:
    if args.smoke:
        return Settings(
            device="cpu", arch=TINY, vocab=512, batches=[4], new_tokens=8, prompt_tokens=20,
            engine_dtype=args.engine_dtype, profile_batch=4, profile_tokens=8,
            train_micro=2, train_block=64, train_accum=2, train_steps=2,
            eval_fraction=2e-4, eval_batch=16, copy_mb=8, matmul_n=256,
        )  # fmt: skip
    import torch

    return Settings(
        device="cuda" if torch.cuda.is_available() else "cpu", arch=BASE, vocab=32_000,
        batches=[int(b) if b.isdigit() else b for b in args.batches.split(",")], new_tokens=400,
        prompt_tokens=20, engine_dtype=args.engine_dtype, profile_batch=256, profile_tokens=400,
        train_micro=16, train_block=1024, train_accum=16, train_steps=3,
        eval_fraction=0.05, eval_batch=128, copy_mb=1024, matmul_n=8192,
    )  # fmt: skip


# --- results ---------------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Appends one JSON line per result to `out` (and prints it), tagged with the run id and phase."""

    out: Path
    run: str
    phase: str = ""

    def emit(self, record: dict[str, Any], phase: str | None = None) -> None:
        tags = {"run": self.run, "phase": phase or self.phase}
        if self.phase and os.environ.get("TORCH_COMPILE_DISABLE") == "1":  # a child under --smoke
            tags["torch_compile"] = "disabled (--smoke without --smoke-compile)"
        line = json.dumps(tags | record)
        with open(self.out, "a") as handle:
            handle.write(line + "\n")
        print(line, flush=True)

    def records(self, phase: str | None = None) -> list[dict[str, Any]]:
        """This run's lines (of one phase, if given); a line cut short by a killed phase is skipped."""
        if not self.out.exists():
            return []
        found = []
        for line in self.out.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("run") == self.run and phase in (None, record.get("phase")):
                found.append(record)
        return found


# --- device helpers --------------------------------------------------------------------------------------


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[], object], device, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def spec_for(device_name: str) -> dict[str, float] | None:
    return next((spec for key, spec in SPECS.items() if key in device_name), None)


def device_name(device) -> str:
    import platform

    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    return f"CPU {platform.machine()}, {os.cpu_count()} cores"


def free_memory(device) -> None:
    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 1e9, 2) if torch.device(device).type == "cuda" else None


class VocabOnly:
    """What `llama_config` reads from a tokenizer: its length and cdsynth's special ids."""

    bos_token_id, eos_token_id, pad_token_id = BOS, 2, PAD

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def build_lm(s: Settings, seed: int, dtype: str):
    """A randomly initialised LlamaForCausalLM of `s.arch`, as cdsynth builds it, on the device."""
    import torch
    from transformers import LlamaForCausalLM

    from cdsynth.spec.training import Architecture
    from cdsynth.train.models import llama_config

    torch.manual_seed(seed)
    with torch.device(s.device):
        model = LlamaForCausalLM(llama_config(Architecture(**s.arch), VocabOnly(s.vocab)))
    return model.to(getattr(torch, dtype))


def make_prompts(rows: int, s: Settings, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[BOS] + [rng.randrange(4, s.vocab) for _ in range(s.prompt_tokens - 1)] for _ in range(rows)]


# --- phase: ceilings -------------------------------------------------------------------------------------


def phase_ceilings(rec: Recorder, s: Settings) -> None:
    import torch
    import transformers

    name = device_name(s.device)
    rec.emit(
        {
            "device": name,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "cuda": torch.version.cuda,
            "spec": spec_for(name),
        }
    )
    size = s.copy_mb * 2**20
    source = torch.empty(size, dtype=torch.uint8, device=s.device)
    target = torch.empty_like(source)
    copy_s = seconds_per_call(lambda: target.copy_(source), s.device, repeats=20)
    record: dict[str, Any] = {"copy_dtod_gbs": round(2 * size / copy_s / 1e9, 1)}  # bytes read + written
    if s.device == "cuda":
        host = torch.empty(size, dtype=torch.uint8, pin_memory=True)
        h2d_s = seconds_per_call(lambda: target.copy_(host, non_blocking=True), s.device, repeats=10)
        record["copy_htod_pinned_gbs"] = round(size / h2d_s / 1e9, 1)
    record["matmul_tflops"] = {kind: matmul_tflops(s, kind) for kind in ("bfloat16", "tf32", "float32")}
    rec.emit(record)


def matmul_tflops(s: Settings, kind: str) -> float:
    """An n x n x n product's rate in TFLOP/s; tf32 is float32 with TF32 tensor cores allowed."""
    import torch

    dtype = torch.bfloat16 if kind == "bfloat16" else torch.float32
    torch.set_float32_matmul_precision("high" if kind == "tf32" else "highest")
    a, b = (torch.randn(s.matmul_n, s.matmul_n, device=s.device, dtype=dtype) for _ in range(2))
    per_call = seconds_per_call(lambda: a @ b, s.device, repeats=10, warmup=3)
    torch.set_float32_matmul_precision("highest")
    return round(2 * s.matmul_n**3 / per_call / 1e12, 2)


# --- phases: the engines ---------------------------------------------------------------------------------


class Clock:
    """Timestamps on the device's timeline: CUDA events on a GPU, perf_counter on a CPU."""

    def __init__(self, device) -> None:
        import torch

        self.cuda = torch.device(device).type == "cuda"

    def mark(self):
        import torch

        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, begin, end) -> float:
        return begin.elapsed_time(end) / 1e3 if self.cuda else end - begin


def attach_step_marks(engine, clock: Clock) -> list | None:
    """Marks the end of every decode step by wrapping the engine's step function (None where the engine
    has no `_step`, as the engine before has not); the list fills as the engine decodes."""
    step = getattr(engine, "_step", None)
    if step is None:
        return None
    marks: list = []

    def marked(*args, **kwargs):
        out = step(*args, **kwargs)
        marks.append(clock.mark())
        return out

    engine._step = marked
    return marks


def make_engine(variant: str, expert, amateur, scoring, rows: int | str):
    if variant == "before":
        import engine_before as before

        decoder = before.Decoder(expert, amateur, PAD, pick=before.compiled_picker())
        return before.TorchEngine(decoder, scoring, rows)
    from cdsynth.synth.engine import Decoder, TorchEngine

    decoder = Decoder(expert=expert, amateur=amateur, pad_id=PAD)
    return TorchEngine(decoder, scoring, rows, compile=variant == "compiled")


def steady_step_s(marks: list, clock: Clock) -> tuple[float, int]:
    """(seconds per decode step after the first `skip` steps, skip): compile and graph capture are done
    by then."""
    skip = min(8, len(marks) // 2)
    return clock.seconds(marks[skip], marks[-1]) / (len(marks) - 1 - skip), skip


def time_one_batch(engine, rows: int, compiled: bool, s: Settings, marks: list | None) -> dict:
    """Seconds of one steady batch of `rows` rows ("batch_s"), and the step time where marks exist.

    A compiled engine compiles and captures its graph in the first steps of its first batch: with step
    marks, those steps count at the steady step time (`first_batch_s` is the batch as it ran); without,
    a second batch is timed.
    """
    clock = Clock(s.device)
    second_batch = compiled and marks is None
    sync(s.device)
    start, ends = clock.mark(), []

    def progress(_tokens: int) -> None:
        sync(s.device)
        ends.append(clock.mark())

    engine.continue_prompts(make_prompts(rows * (1 + second_batch), s), s.new_tokens, 0, progress)
    timed = {"batch_s": clock.seconds(ends[-2] if second_batch else start, ends[-1])}
    if marks:
        step_s, skip = steady_step_s(marks, clock)
        timed["step_ms"] = round(step_s * 1e3, 3)
        if compiled:
            timed["first_batch_s"] = round(timed["batch_s"], 2)
            timed["batch_s"] += (skip + 1) * step_s - clock.seconds(start, marks[skip])
    return timed


def measure_engine(variant: str, method: str, batch: int | str, models: dict, s: Settings) -> dict:
    """One engine, method and batch size: new tokens per second of a steady batch."""
    from cdsynth.synth.scoring import Scoring

    engine = make_engine(variant, models["expert"], models["amateur"], Scoring(method=method), batch)
    rows = batch if isinstance(batch, int) else engine.rows_per_batch(s.prompt_tokens + s.new_tokens)
    marks = attach_step_marks(engine, Clock(s.device))
    if variant != "compiled":  # cuBLAS, the allocator and the picker's compile for this shape
        engine.continue_prompts(make_prompts(rows, s, 1), 2, 0, lambda _tokens: None)
        if marks is not None:
            marks.clear()
    timed = time_one_batch(engine, rows, variant == "compiled", s, marks)
    tokens_per_s = rows * s.new_tokens / timed["batch_s"]
    record = {"engine": variant, "method": method, "batch": rows, "requested_batch": batch}
    record |= {
        "dtype": s.engine_dtype,
        "new_tokens": s.new_tokens,
        **timed,
        "batch_s": round(timed["batch_s"], 3),
    }
    record |= {
        "tokens_per_s": round(tokens_per_s),
        "paper_corpus_h": round(PAPER_CORPUS_TOKENS / tokens_per_s / 3600, 2),
        "peak_memory_gb": peak_memory_gb(s.device),
    }
    if method == "cd":
        record["meets_goal"] = tokens_per_s >= GOALS["cd_tokens_per_s"]
    return record


def engine_models(s: Settings, method: str) -> dict:
    """The pair in the engine's precision; the amateur only where the method uses one."""
    import torch

    torch.set_float32_matmul_precision("high")  # as cdsynth.synth.pair.load_decoder: TF32 matmuls
    expert = build_lm(s, seed=1, dtype=s.engine_dtype).eval()
    amateur = build_lm(s, seed=2, dtype=s.engine_dtype).eval() if method == "cd" else None
    return {"expert": expert, "amateur": amateur}


def phase_engine(rec: Recorder, s: Settings, variant: str, method: str) -> None:
    import torch

    models = engine_models(s, method)
    for batch in s.batches:
        if variant == "before" and not isinstance(batch, int):
            rec.emit(
                {
                    "engine": variant,
                    "method": method,
                    "requested_batch": batch,
                    "skipped": "the engine before takes a row count only",
                }
            )
            continue
        try:
            rec.emit(measure_engine(variant, method, batch, models, s))
        except Exception as err:  # out of memory at one batch size should not cost the others
            rec.emit(
                {
                    "engine": variant,
                    "method": method,
                    "requested_batch": batch,
                    "error": f"{type(err).__name__}: {str(err)[:400]}",
                }
            )
        finally:
            torch._dynamo.reset()  # every batch shape compiles anew; drop the old graphs and their pools
            free_memory(s.device)


# --- phase: profile --------------------------------------------------------------------------------------

ATTENTION_WORDS = ("attention", "attn", "flash", "sdpa", "fmha", "cudnn")
RUNTIME_CALLS = (
    "cudaStreamSynchronize",
    "cudaDeviceSynchronize",
    "cudaEventSynchronize",
    "cudaMemcpy",
    "cudaMemcpyAsync",
    "cudaGraphLaunch",
    "cudaLaunchKernel",
)


def phase_profile(rec: Recorder, s: Settings) -> None:
    """torch.profiler over the second of two compiled CD batches (the first compiles and captures)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from cdsynth.synth.scoring import Scoring

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.device == "cuda" else [])
    with profile(activities=activities):  # CUPTI attached before any graph is captured
        torch.ones(1, device=s.device).add_(1)
    models = engine_models(s, "cd")
    engine = make_engine(
        "compiled", models["expert"], models["amateur"], Scoring(method="cd"), s.profile_batch
    )
    profiler = profile(activities=activities)
    batches_done = 0

    def progress(_tokens: int) -> None:
        nonlocal batches_done
        sync(s.device)
        batches_done += 1
        (profiler.start if batches_done == 1 else profiler.stop)()

    prompts = make_prompts(2 * s.profile_batch, s)
    engine.continue_prompts(prompts, s.profile_tokens, 0, progress)
    rec.emit(profile_summary(profiler.key_averages(), s))
    del engine, models
    torch._dynamo.reset()


def event_seconds(event, on_device: bool) -> float:
    """An averaged event's own time: device time for kernels (the attribute's name depends on torch)."""
    if not on_device:
        return event.self_cpu_time_total / 1e6
    for name in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(event, name):
            return getattr(event, name) / 1e6
    return 0.0


def profile_summary(events, s: Settings) -> dict:
    """Top kernels (ops on a CPU), the attention ones, and runtime calls and copies per decode step."""
    from torch.autograd import DeviceType

    on_device = s.device == "cuda"
    kernels = [e for e in events if (e.device_type == DeviceType.CUDA) == on_device]
    kernels.sort(key=lambda e: -event_seconds(e, on_device))
    total = sum(event_seconds(e, on_device) for e in kernels) or 1.0

    def row(e) -> dict:
        seconds = event_seconds(e, on_device)
        return {"name": e.key[:160], "calls": e.count, "share": round(seconds / total, 4)}

    counts = {e.key: e.count for e in events}
    per_step = {name: round(counts.get(name, 0) / s.profile_tokens, 2) for name in RUNTIME_CALLS}
    for direction in ("DtoH", "HtoD", "DtoD"):
        copies = sum(e.count for e in events if e.key.startswith(f"Memcpy {direction}"))
        per_step[f"memcpy_{direction}"] = round(copies / s.profile_tokens, 2)
    attention = [row(e) for e in kernels if any(w in e.key.lower() for w in ATTENTION_WORDS)]
    return {
        "engine": "compiled",
        "method": "cd",
        "batch": s.profile_batch,
        "new_tokens": s.profile_tokens,
        "kernels_are": "CUDA kernels" if on_device else "CPU ops",
        "busy_s": round(total, 3),
        "attention_kernels": attention[:5],
        "top_kernels": [row(e) for e in kernels[:10]],
        "per_step": per_step,
        "note": "per step = count / new tokens of the profiled batch (its prefill, the uniforms' copy "
        "and the final .tolist() included)",
    }


# --- phase: trainer --------------------------------------------------------------------------------------


def loss_module(model):
    """(module mapping ids to the training loss, where it comes from): the trainer's own if it imports."""
    import torch

    try:
        from cdsynth.train.trainer import NextTokenLoss

        return NextTokenLoss(model), "cdsynth.train.trainer.NextTokenLoss"
    except ImportError as err:

        class TransformersLoss(torch.nn.Module):
            def __init__(self, lm) -> None:
                super().__init__()
                self.lm = lm

            def forward(self, input_ids):
                return self.lm(input_ids=input_ids, labels=input_ids).loss

        return TransformersLoss(model), f"transformers' loss (trainer not importable here: {err})"


def phase_trainer(rec: Recorder, s: Settings) -> None:
    """Optimizer steps as cdsynth's trainer takes them: fp32 weights, bf16 autocast, `accum` micro batches,
    fused AdamW decaying matrices only, torch.compile, one host sync per step; random token blocks."""
    import contextlib

    import torch

    cuda = s.device == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    model = build_lm(s, seed=42, dtype="float32").train()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.999), fused=cuda)
    loss_fn, source = loss_module(model)
    loss_fn = torch.compile(loss_fn)
    blocks = torch.randint(4, s.vocab, (s.train_accum * s.train_micro, s.train_block), device=s.device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    def step() -> float:
        total = torch.zeros((), device=s.device)
        for index in range(s.train_accum):
            with autocast:
                loss = loss_fn(blocks[index * s.train_micro : (index + 1) * s.train_micro]) / s.train_accum
            loss.backward()
            total += loss.detach()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return total.item()

    start = time.perf_counter()
    step()  # compile (forward and backward) and the optimizer's state
    compile_s = time.perf_counter() - start
    per_step = seconds_per_call(step, s.device, repeats=s.train_steps, warmup=1)
    tokens_per_s = s.train_accum * s.train_micro * s.train_block / per_step
    rec.emit(
        {
            "loss_module": source,
            "micro_batch": s.train_micro,
            "block": s.train_block,
            "accumulation": s.train_accum,
            "steps_timed": s.train_steps,
            "first_step_s": round(compile_s, 1),
            "step_s": round(per_step, 3),
            "tokens_per_s": round(tokens_per_s),
            **mfu(model, tokens_per_s, s, rec),
            "peak_memory_gb": peak_memory_gb(s.device),
        }
    )


def mfu(model, tokens_per_s: float, s: Settings, rec: Recorder) -> dict:
    """MFU = 6 N x tokens/s / peak, N the parameters that multiply (all but the input embedding), against
    the datasheet and against this run's measured matmul; `with_attention` adds the PaLM attention term
    (12 x layers x hidden x block, as `cdsynth.train.models.flops_per_token`)."""
    n = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    flops = 6 * n * tokens_per_s
    attention = 12 * s.arch["layers"] * s.arch["hidden"] * s.train_block * tokens_per_s
    spec = spec_for(device_name(s.device))
    measured = next((r["matmul_tflops"] for r in rec.records("ceilings") if "matmul_tflops" in r), {})
    measured_peak = measured.get("bfloat16" if s.device == "cuda" else "float32")
    out = {"params_6n": n, "mfu_spec": None, "mfu_measured_matmul": None, "mfu_spec_with_attention": None}
    if spec:
        peak = spec["bf16_tflops"] * 1e12
        out |= {
            "mfu_spec": round(flops / peak, 4),
            "mfu_spec_with_attention": round((flops + attention) / peak, 4),
        }
    if measured_peak:
        out["mfu_measured_matmul"] = round(flops / (measured_peak * 1e12), 4)
    out["meets_goal"] = out["mfu_spec"] is not None and out["mfu_spec"] >= GOALS["mfu"]
    return out


# --- phase: evaluation -----------------------------------------------------------------------------------


def suite_counts(eval_data: str | None) -> tuple[dict[str, int], str]:
    """Sequences per task: counted from the BabyLM data directory if given, else `SUITE`'s."""
    if eval_data is None:
        return {task: count for task, (count, _, _) in SUITE.items()}, "SUITE constant"
    from cdsynth.eval.items import load_items, load_reading

    counts = {
        task: sum(len(item.candidates) for item in load_items(eval_data, task))
        for task in SUITE
        if task != "reading"
    }
    rows = load_reading(eval_data)
    counts["reading"] = len(rows) + sum(r["prev_item"] is not None for r in rows)  # words, ~ queries
    return counts, eval_data


def suite_sample(s: Settings, counts: dict[str, int]) -> dict[str, tuple[list, list]]:
    """Per task, random sequences of its lengths (+-40%) with its scored tokens at the end."""
    rng = random.Random(0)
    sample = {}
    for task, (_, mean, scored) in SUITE.items():
        sequences, wanted = [], []
        for _ in range(max(2, round(counts[task] * s.eval_fraction))):
            length = max(2, round(mean * rng.uniform(0.6, 1.4)))
            sequences.append([BOS] + [rng.randrange(4, s.vocab) for _ in range(length - 1)])
            keep = min(scored, length - 1)
            wanted.append([False] * (length - keep) + [True] * keep)
        sample[task] = (sequences, wanted)
    return sample


def phase_eval(rec: Recorder, s: Settings, eval_data: str | None) -> None:
    """`cdsynth.eval.lm_scoring.token_logprobs` per task on a sample, scaled to the whole suite; float32
    (the paper preset's eval.dtype, no TF32, as the official pipeline) and bfloat16."""
    import torch

    from cdsynth.eval.lm_scoring import token_logprobs

    counts, counted_from = suite_counts(eval_data)
    sample = suite_sample(s, counts)
    model = build_lm(s, seed=3, dtype="float32").eval()
    for dtype in ("float32", "bfloat16"):
        model = model.to(getattr(torch, dtype))
        warm_seqs, warm_wanted = sample["entity_tracking"]
        token_logprobs(model, warm_seqs[: s.eval_batch], warm_wanted[: s.eval_batch], s.eval_batch)
        per_task = {}
        for task, (sequences, wanted) in sample.items():
            sync(s.device)
            start = time.perf_counter()
            token_logprobs(model, sequences, wanted, s.eval_batch)
            sync(s.device)
            seconds = time.perf_counter() - start
            per_task[task] = {
                "sampled": len(sequences),
                "sequences_per_s": round(len(sequences) / seconds),
                "suite_s": round(seconds * counts[task] / len(sequences), 2),
            }
        total_s = sum(task["suite_s"] for task in per_task.values())
        rec.emit(
            {
                "dtype": dtype,
                "batch_size": s.eval_batch,
                "counted_from": counted_from,
                "suite_sequences": sum(counts.values()),
                "s_per_checkpoint": round(total_s, 2),
                "sequences_per_s": round(sum(counts.values()) / total_s),
                "meets_goal": total_s <= GOALS["eval_s_per_checkpoint"],
                "per_task": per_task,
            }
        )


# --- the child: one phase --------------------------------------------------------------------------------


def run_phase(args: argparse.Namespace, rec: Recorder) -> None:
    s = make_settings(args)
    name = args.phase
    if name == "ceilings":
        phase_ceilings(rec, s)
    elif name == "trainer":
        phase_trainer(rec, s)
    elif name == "eval":
        phase_eval(rec, s, args.eval_data)
    elif name == "profile":
        phase_profile(rec, s)
    else:
        variant, method = name.split("_", 1)
        phase_engine(rec, s, variant, method)


# --- the parent: every phase in its own capped subprocess ------------------------------------------------


def child_argv(phase: str, run: str) -> list[str]:
    """This command line for one phase: the same options, plus --phase and --run-id."""
    return [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--phase", phase, "--run-id", run]


def run_child(
    phase: str, rec: Recorder, timeout: float, log: Path, smoke_without_compile: bool
) -> tuple[str, float, str]:
    """(status, seconds, the end of its stderr); a child that overruns is killed with its process group
    (inductor's compile workers included)."""
    env = os.environ | {"TRANSFORMERS_VERBOSITY": "error", "PYTHONUNBUFFERED": "1"}
    if smoke_without_compile:  # compiling on a CPU takes minutes; the code paths run all the same
        env["TORCH_COMPILE_DISABLE"] = "1"
    start = time.monotonic()
    with open(log, "a") as handle:
        handle.write(f"\n===== {phase} (run {rec.run}) =====\n")
        handle.flush()
        offset = handle.tell()
        child = subprocess.Popen(child_argv(phase, rec.run), stderr=handle, env=env, start_new_session=True)
        try:
            status = "ok" if child.wait(timeout=timeout) == 0 else f"exit code {child.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = f"timeout after {timeout:.0f} s"
    with open(log) as handle:
        handle.seek(offset)
        tail = handle.read()[-1500:]
    return status, time.monotonic() - start, tail


def run_all(args: argparse.Namespace, rec: Recorder) -> None:
    chosen = args.phases.split(",") if args.phases else [p.name for p in PHASES]
    phases = [p for p in PHASES if p.name in chosen]
    log = rec.out.with_suffix(".log")
    print(f"run {rec.run}: {len(phases)} phases, budget {args.budget:.0f} s -> {rec.out} (stderr: {log})")
    start = time.monotonic()
    for phase in phases:
        left = args.budget - (time.monotonic() - start)
        if left < MIN_PHASE_S:
            rec.emit({"skipped": f"budget spent ({args.budget:.0f} s)"}, phase.name)
            continue
        timeout = min(SMOKE_CAP_S if args.smoke else phase.cap_s, left)
        no_compile = args.smoke and not args.smoke_compile
        status, seconds, tail = run_child(phase.name, rec, timeout, log, no_compile)
        done = {"status": status, "seconds": round(seconds, 1)}
        if status != "ok":
            done["error"] = f"{status}; stderr ends: {tail[-800:]}"
        elif not rec.records(phase.name):
            done["error"] = "the phase wrote no result"
        rec.emit(done, phase.name)
    print(summary(rec.records()))


# --- summary ---------------------------------------------------------------------------------------------


def summary(records: list[dict]) -> str:
    """The figures beside their goals: ceilings, an engine table, profile, trainer, eval, problems."""
    lines = ["", "=== summary ==="]
    for r in records:
        if "device" in r:
            lines.append(f"device: {r['device']}, torch {r['torch']}, transformers {r['transformers']}")
            lines.append(f"  datasheet: {r['spec']}")
        if "copy_dtod_gbs" in r:
            lines.append(f"  measured: copy {r['copy_dtod_gbs']:,} GB/s, matmul TFLOP/s {r['matmul_tflops']}")
    lines += engine_table([r for r in records if "engine" in r and "batch_s" in r])
    for r in records:
        if "attention_kernels" in r:
            names = ", ".join(k["name"] for k in r["attention_kernels"]) or "none found"
            lines.append(f"profile (compiled CD, batch {r['batch']}): attention kernels: {names}")
            lines.append(f"  per decode step: {r['per_step']}")
        if "loss_module" in r:
            lines.append(
                f"trainer: {r['tokens_per_s']:,} tokens/s, MFU {r['mfu_spec']} of the datasheet, "
                f"{r['mfu_measured_matmul']} of the measured matmul (goal >= {GOALS['mfu']})"
            )
        if "s_per_checkpoint" in r:
            lines.append(
                f"eval ({r['dtype']}): {r['s_per_checkpoint']} s per checkpoint, {r['sequences_per_s']:,} "
                f"sequences/s (goal <= {GOALS['eval_s_per_checkpoint']:g} s)"
            )
    for r in records:
        if "error" in r or "skipped" in r:
            what = " ".join(str(r[k]) for k in ("engine", "method", "requested_batch") if k in r)
            lines.append(f"{r['phase']} {what}: {r.get('error') or 'skipped: ' + r['skipped']}"[:300])
    return "\n".join(lines)


def engine_table(records: list[dict]) -> list[str]:
    """New tokens/s per (method, batch) for each engine, and the compiled engine against the old one."""
    if not records:
        return []
    rate = {(r["method"], r["batch"], r["engine"]): r["tokens_per_s"] for r in records}
    lines = [
        f"engines, new tokens/s ({records[0]['dtype']}; CD goal >= {GOALS['cd_tokens_per_s']:,}, "
        f"stretch {GOALS['cd_stretch']:,}):",
        f"  {'method':10} {'batch':>6} {'before':>9} {'eager':>9} {'compiled':>9}  compiled/before",
    ]
    for method, batch in sorted({(m, b) for m, b, _ in rate}, key=lambda k: (k[0] != "cd", -k[1])):
        cells = [rate.get((method, batch, engine)) for engine in ("before", "eager", "compiled")]
        text = " ".join(f"{c:>9,}" if c else f"{'-':>9}" for c in cells)
        ratio = f"{cells[2] / cells[0]:.2f}x" if cells[0] and cells[2] else "-"
        best = max(c or 0 for c in cells)
        goal = (
            "" if method != "cd" else ("  meets goal" if best >= GOALS["cd_tokens_per_s"] else "  below goal")
        )
        lines.append(f"  {method:10} {batch:>6} {text}  {ratio}{goal}")
    return lines


def default_out() -> Path:
    return (
        Path(os.environ["OUT"]) / "gpu_window.jsonl"
        if os.environ.get("OUT")
        else REPO / "bench/gpu_window.jsonl"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=default_out(), help="JSON-lines file to append to")
    parser.add_argument("--smoke", action="store_true", help="every phase on the CPU with a tiny pair")
    parser.add_argument("--smoke-compile", action="store_true", help="--smoke with torch.compile (minutes)")
    parser.add_argument("--budget", type=float, default=None, help="seconds for all phases (480; smoke 7200)")
    parser.add_argument("--phases", default="", help="comma-separated subset of the phases, in their order")
    parser.add_argument("--batches", default="2048,1024,256", help="engine rows per batch (or auto)")
    parser.add_argument("--engine-dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--eval-data", default=None, help="BabyLM eval data dir to count the suite from")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)  # a child runs one phase
    parser.add_argument("--run-id", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.budget = args.budget or (7200.0 if args.smoke else 480.0)
    unknown = set(filter(None, args.phases.split(","))) - {p.name for p in PHASES}
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {[p.name for p in PHASES]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rec = Recorder(args.out, args.run_id or time.strftime("%Y%m%d-%H%M%S"), args.phase or "")
    if args.phase:
        run_phase(args, rec)
    else:
        run_all(args, rec)


if __name__ == "__main__":
    main()
