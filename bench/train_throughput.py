"""Trainer throughput: tokens/s and model-FLOPs utilisation (MFU) for model presets.

Runs the real trainer (`cdsynth.train.train`) on token shards of the demo corpus for a few steps
and reports the steady-state speed (the second half of the run, after warm-up). MFU = training
FLOPs per token (6N + attention, PaLM appendix B) x tokens/s / peak FLOP/s; on CPU the peak is a
measured large fp32 matmul, on GPU the vendor's dense bf16 figure. The FLOPs counted are the model's:
the loss's checkpointed head (recomputed in backward, `cdsynth.train.trainer.chunked_lm_loss`) is not.

    python bench/train_throughput.py --preset tiny --preset base
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
import yaml

from cdsynth.data.corpus import build_corpus
from cdsynth.data.shards import build_shards
from cdsynth.data.tokenizer import load_tokenizer, train_tokenizer
from cdsynth.spec.sources import expand_paths
from cdsynth.spec.training import TrainSettings
from cdsynth.train.models import build_model, flops_per_token
from cdsynth.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
PRESETS = {
    "tiny": yaml.safe_load((REPO / "config.yaml").read_text())["models"]["tiny"],
    **yaml.safe_load((REPO / "workflow/presets/paper.yaml").read_text())["models"],
}


def peak_flops(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name()
        for key, peak in GPU_PEAK_BF16.items():
            if key in name:
                return peak, f"{name} dense bf16 spec"
        raise SystemExit(f"no peak FLOP/s known for {name}: add it to GPU_PEAK_BF16")
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    return 2 * 2048**3 * reps / (time.perf_counter() - start), "measured fp32 2048x2048 matmul"


def prepare(root: Path, vocab_size: int) -> dict[str, Path]:
    """The demo corpus (config.yaml's sources, relative to the repository) as token shards."""
    sources = yaml.safe_load((REPO / "config.yaml").read_text())["corpus"]["sources"]
    for source in sources.values():
        for split in ("train", "test"):
            source[split] = expand_paths(source.get(split, []), base=REPO)
    build_corpus(sources, root / "corpus")
    train_tokenizer(
        root / "corpus/train.arrow", root / "tokenizer", recipe="authors", vocab_size=vocab_size, threads=2
    )
    for split in ("train", "test"):
        build_shards(
            root / f"corpus/{split}.arrow",
            root / "tokenizer",
            root / f"tokens/{split}",
            threads=2,
        )
    return {"tokenizer": root / "tokenizer", "train": root / "tokens/train", "test": root / "tokens/test"}


def measure(preset: str, data: dict[str, Path], args, device: torch.device) -> dict:
    arch = PRESETS[preset]
    # The demo's recipe at the measured shape (the learning rate and its schedule cost nothing).
    recipe = yaml.safe_load((REPO / "config.yaml").read_text())["train"] | {
        "block_size": args.block_size,
        "steps": 2 * args.steps,
        "batch_size": args.micro_batch,
        "micro_batch_size": args.micro_batch,
        "checkpoints": {"every": args.steps},
        "eval_blocks": 1,
        "warmup_steps": 1,
        "compile": args.compile,
    }
    cfg = TrainSettings.of(recipe, arch, seed=42, threads=args.threads)
    with tempfile.TemporaryDirectory() as out:
        history = train(cfg, data["train"], data["test"], data["tokenizer"], out)
    model = build_model(cfg.arch, load_tokenizer(data["tokenizer"]), seed=0)
    block = args.block_size
    speed = history[-1]["tokens_per_s"]
    return {
        "preset": preset,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "tokens_per_s": speed,
        "flops_per_token": flops_per_token(model, block),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--preset", action="append", choices=sorted(PRESETS), help="repeatable (default: tiny, base)"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after as many warm-up steps)")
    parser.add_argument("--micro-batch", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(args.threads)
    peak, peak_source = peak_flops(device)
    print(
        f"device: {device} ({platform.processor() or platform.machine()}), peak {peak / 1e12:.2f} TFLOP/s "
        f"({peak_source}); block {args.block_size}, micro batch {args.micro_batch}, vocab {args.vocab_size}"
    )
    with tempfile.TemporaryDirectory() as root:
        data = prepare(Path(root), args.vocab_size)
        print("| preset | params (M) | tokens/s | TFLOP/s | MFU |")
        print("|---|---|---|---|---|")
        for preset in args.preset or ["tiny", "base"]:
            row = measure(preset, data, args, device)
            achieved = row["tokens_per_s"] * row["flops_per_token"]
            print(
                f"| {preset} | {row['params_m']:.1f} | {row['tokens_per_s']:,.0f} | {achieved / 1e12:.3f} | "
                f"{achieved / peak:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
