"""Small real-text corpora, the micro architecture and a tiny workflow config shared by the tests."""

from __future__ import annotations

import csv
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import yaml

from cdsynth.io import sha256_file, write_arrow
from cdsynth.resumable import work_path
from cdsynth.spec.training import Architecture, TrainSettings

MICRO_ARCH = {"layers": 2, "hidden": 64, "heads": 2, "intermediate": 128, "max_positions": 64}
MICRO = Architecture(**MICRO_ARCH)
# The recipe fields the tests' micro runs share (the settings have no defaults for what a config sets).
MICRO_RECIPE = {
    "block_size": 32,
    "packing": "shuffled",
    "min_lr_ratio": 0.0,
    "warmup_from_zero": False,
    "weight_decay": 0.1,
    "betas": (0.9, 0.999),
    "grad_clip": 1.0,
    "compile": False,
    "threads": 1,
}


def micro_settings(seed: int, arch: dict | Architecture = MICRO, **values) -> TrainSettings:
    """A micro run's settings: `MICRO_RECIPE` with the test's own values."""
    return TrainSettings.of(MICRO_RECIPE | values, arch, seed)


VOCAB = 2000
# (file under corpus/, words taken): stories, old books with curly quotes and runs of spaces, and
# WikiText with digits, accents and spaced punctuation.
SOURCES = [
    ("tinystories/tinystories_v1_train_head_2316stories.txt.xz", 50_000),
    ("gutenberg/pg1661_adventures_of_sherlock_holmes.txt.xz", 30_000),
    ("gutenberg/pg3820_nathan_the_wise.txt.xz", 20_000),
    ("gutenberg/pg8800_divine_comedy_longfellow.txt.xz", 15_000),
    ("wikipedia/wikitext2_raw_test.txt.xz", 35_000),
]


def _chunks(path: Path, max_words: int, chunk_words: int = 100) -> list[str]:
    """Group non-blank lines into chunks of >= chunk_words words joined by "\\n" (as the corpus step does)."""
    chunks, lines, words, total = [], [], 0, 0
    with lzma.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            lines.append(line)
            words += len(line.split())
            if words >= chunk_words:
                chunks.append("\n".join(lines))
                total += words
                lines, words = [], 0
                if total >= max_words:
                    break
    return chunks


def write_corpus(texts: list[str], path: Path, source: str = "test") -> Path:
    words = [len(t.split()) for t in texts]
    table = pa.table(
        {
            "text": pa.array(texts, pa.string()),
            "source": [source] * len(texts),
            "doc_id": list(range(len(texts))),
        }
    ).append_column("words", pa.array(words, pa.int64()))
    write_arrow(table, path)
    return path


def real_corpus(corpus_dir: Path, path: Path) -> Path:
    """~150k words of real text as a corpus split file."""
    return write_corpus([c for name, words in SOURCES for c in _chunks(corpus_dir / name, words)], path)


REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2"]


def tiny_config(corpus_dir: Path) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    tiny = corpus_dir / "tinystories"
    valid = tiny / "tinystories_v1_valid_head.txt.xz"
    config["corpus"]["sources"] = {
        "tinystories": {
            "format": "lines",
            "max_words": 40_000,
            "train": [str(tiny / "tinystories_v1_train_head_2316stories.txt.xz")],
            "test": [{"url": valid.as_uri(), "sha256": sha256_file(valid)}],
        },
        "gutenberg": {
            "format": "paragraphs",
            "max_words": 40_000,
            "train": [str(corpus_dir / "gutenberg/pg*.xz")],
        },
    }
    config["tokenizer"] = {"recipe": "authors", "vocab_size": 800, "max_sentences": None}
    config["shards"]["block_size"] = 32
    config["models"] = {"micro": MICRO_ARCH}
    config["baseline"] = {"micro": [42, 43]}
    config["train"].update(
        steps=20, checkpoints={"every": 10}, warmup_steps=2, batch_size=8, micro_batch_size=4
    )
    config["eval"].update(data_dir=str(corpus_dir.parent / "babylm2025_eval"), max_items_per_task=5, stride=1)
    config["synth"].update(
        good={"model": "micro", "seed": 42, "step": 20},
        tokens=160,
        new_tokens=10,
        continuations=2,
        shards=2,
        batch_size=8,
    )
    config["mix"].update(model="micro", seeds=[42, 43], rounding="exact")
    config["experiments"] = {
        "Baseline": {},
        "No-Contrast": {"corpus": {"method": "ancestral"}},
        "CD-Early-10": {"corpus": {"method": "cd", "amateur": "early:10"}},
    }
    config["tables"] = {"main": ["Baseline", "No-Contrast", "CD-Early-10"]}
    config["stats"]["bootstrap_samples"] = 200
    return config


SYNTH = "results/synth/micro-seed42-step20"
CD = "cd_early-10_s1_a0.1_pen-20"


def snakemake(workdir: Path, config: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # Targets go before --configfile, which would otherwise take them as more config files.
    command = [*SNAKEMAKE, *args, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run, as {rule: count}."""
    lines = output.split("Job stats:")[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def weights(run_dir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(run_dir.glob("step*/model.safetensors"))}


def kill_and_resume(cfg, paths: dict[str, str], tmp_path: Path) -> Path:
    """Train `cfg` in a subprocess, kill -9 it after its first save, rerun it; returns the run directory."""
    import json
    import signal
    from dataclasses import asdict

    import torch

    out = tmp_path / "killed"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": asdict(cfg), **paths, "out_dir": str(out)}))
    command = [sys.executable, "-m", "cdsynth.train.launch", "--spec", str(spec)]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    state = work_path(out) / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and not out.exists(), "the run must be killed midway"
    killed_at = torch.load(state, weights_only=False)["step"]
    assert killed_at < cfg.steps

    resumed = subprocess.run(command, capture_output=True, text=True, check=True)
    assert f"resuming from step {killed_at}" in resumed.stderr
    return out


DIRECTORY_OUTPUT = re.compile(r"(^|/)(tokenizer|tokens(/(train|test))?|seed\d+)$")
# `snakemake --touch` with its executor's pause between jobs taken out (it only orders file times).
TOUCH_ALL = (
    "import sys, snakemake.executors.touch as touch, snakemake.cli as cli; "
    "touch.Executor.SLEEPING_TIME = 0; sys.argv[0] = 'snakemake'; cli.main()"
)


def workflow_args(workdir: Path, configfile: Path) -> list[str]:
    return ["--snakefile", str(REPO / "Snakefile"), "--cores", "2", "--directory", str(workdir),
            "--configfile", str(configfile)]  # fmt: skip


def snakemake_in(workdir: Path, configfile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", *workflow_args(workdir, configfile), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO)


def jobs(dry_run: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job a dry run prints."""
    found, rule = [], None
    for line in dry_run.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("    output: ") and rule:
            found.append((rule, line.removeprefix("    output: ").split(", ")))
    return found


def fake_finished_run(workdir: Path, configfile: Path) -> int:
    """Every output of the workflow made up to date in `workdir` without running a job; the count.

    Outputs are empty files and directories; `snakemake --touch --forceall` then gives them times in the
    pipeline's order and records Snakemake's metadata (params, code digests) for every job, as a real run
    would have left it.
    """
    listed = snakemake_in(workdir, configfile, "-n")
    assert listed.returncode == 0, (listed.stdout + listed.stderr)[-2000:]
    outputs = 0
    for _, paths in jobs(listed.stdout):
        for relative in paths:
            path = workdir / relative
            if DIRECTORY_OUTPUT.search(relative):
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            outputs += 1
    command = [sys.executable, "-c", TOUCH_ALL, *workflow_args(workdir, configfile), "--touch", "--forceall"]
    touched = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert touched.returncode == 0, touched.stderr[-2000:]
    return outputs


def checkout(tmp_path: Path) -> Path:
    """A copy of the project with every file's time set to now, as a fresh clone would have."""
    copy = tmp_path / "checkout"
    skip = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info")
    shutil.copytree(REPO, copy, ignore=skip)
    for path in copy.rglob("*"):
        os.utime(path)
    return copy


def dry_run_from(copy: Path, workdir: Path, configfile: Path | None = None) -> dict[str, int]:
    """Job counts of a plain `snakemake -n` (no profile) with the copy's workflow and package."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(copy / "Snakefile"), "-n"]
    command += ["--directory", str(workdir), "--configfile", str(configfile or workdir / "config.yaml")]
    env = os.environ | {"PYTHONPATH": str(copy / "src")}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    return {} if "Nothing to be done" in output else job_counts(output)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """An evaluation task file: one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_reading(path: Path, rows: list[list]) -> None:
    """reading_data.csv with the official header's first columns and `rows` under it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "item", "word", "sentence"])
        writer.writerows(rows)
