"""A finished run as a git repository: `main` holds the final model, one branch per BabyLM revision.

Each branch is one commit with no parent, so fetching `main` does not fetch every checkpoint's weights.
The commits are made with git's plumbing (hash-object, mktree, commit-tree) straight from the run's
files, by a fixed author and committer, dated when each checkpoint was saved (its checkpoint.json's
modification time) and with the user's git configuration shut out: exporting the same run twice gives the
same commit ids. The repository is built in `OUT.partial` and renamed onto OUT when it is complete.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdsynth.errors import ConfigError, DataError
from cdsynth.export.card import Inputs, Revision, get, model_card
from cdsynth.export.compat import branch_files, read_object
from cdsynth.spec.tracks import budget_problem

# BabyLM 2025's names for intermediate checkpoints, by millions of words seen.
MARKS = tuple(f"chck_{n}M" for n in (*range(1, 10), *range(10, 100, 10), *range(100, 1001, 100)))
MAIN = "main"
CARD = "README.md"
INFO = "checkpoint.json"
# The Hub keeps files over 10 MB in Git LFS; these attributes are the Hub's own for weights (see
# docs/submitting.md: `git lfs migrate import` turns the plain blobs into LFS objects before a push).
GITATTRIBUTES = b"".join(
    pattern + b" filter=lfs diff=lfs merge=lfs -text\n" for pattern in (b"*.safetensors", b"*.model")
)
IDENTITY = ("cdsynth export", "cdsynth-export@localhost")
# Left by this module in the repository it is building, so that a killed export's OUT.partial is known
# as ours and replaced, while any other directory of that name is refused.
PARTIAL_MARK = "cdsynth-export-partial"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path
    info: dict[str, Any]

    @property
    def mark(self) -> str | None:
        return self.info.get("mark") or None


def finished_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """The checkpoints a finished run published, in step order (metrics.csv lists them)."""
    if not run_dir.is_dir():
        raise ConfigError(f"RUN {run_dir}: not a directory; give a training run's output directory")
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        running = Path(f"{run_dir}.partial").exists()
        why = f" ({run_dir}.partial holds a run still training)" if running else ""
        raise DataError(
            f"{metrics}: not found, so {run_dir} is not a finished training run{why}. Finish training first "
            "(rerun Snakemake), or give the directory that holds metrics.csv and step<N>/."
        )
    try:
        with open(metrics, newline="") as handle:
            steps = sorted({int(row["step"]) for row in csv.DictReader(handle)})
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{metrics}: no readable `step` column ({err}). Retrain the run.") from err
    if not steps:
        raise DataError(f"{metrics}: lists no checkpoint. Retrain the run.")
    checkpoints = []
    for step in steps:
        path = run_dir / f"step{step}"
        if not (path / INFO).is_file():
            raise DataError(
                f"{path / INFO}: not found, but {metrics} lists step {step}. The run is incomplete: "
                "retrain it or copy it again."
            )
        checkpoints.append(Checkpoint(step, path, read_object(path / INFO)))
    return checkpoints


def revisions_of(checkpoints: list[Checkpoint]) -> dict[int, tuple[str, ...]]:
    """{step: branch names} of the commits to make: each marked checkpoint, and main (the last)."""
    names: dict[int, list[str]] = {}
    seen: dict[str, Path] = {}
    for checkpoint in checkpoints:
        mark = checkpoint.mark
        if mark is None:
            continue
        if mark not in MARKS:
            raise DataError(
                f"{checkpoint.path / INFO}: mark {mark!r} is not a BabyLM revision name (chck_1M ... "
                "chck_9M, chck_10M ... chck_90M, chck_100M ... chck_1000M). Fix the training schedule."
            )
        if mark in seen:
            raise DataError(
                f"{checkpoint.path / INFO} and {seen[mark] / INFO}: both are marked {mark}. Fix the "
                "training schedule: each revision names one checkpoint."
            )
        seen[mark] = checkpoint.path
        names[checkpoint.step] = [mark]
    final = checkpoints[-1].step
    names[final] = [MAIN, *names.get(final, [])]
    return {step: tuple(names[step]) for step in sorted(names)}


def check_out(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"OUT {out_dir}: exists and is not empty; give a new path or remove it first")
    partial = Path(f"{out_dir}.partial")
    if partial.exists() and not (partial / ".git" / PARTIAL_MARK).is_file():
        raise ConfigError(
            f"{partial}: exists and was not left by `cdsynth export`; the export builds there, so move it "
            "away or give another OUT"
        )


def read_optional(path: Path | None, flag: str, what: str) -> dict[str, Any] | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: file not found; give {what}")
    return read_object(path)


def read_scores(eval_dir: Path | None, steps: list[int]) -> dict[int, dict[str, Any]] | None:
    """{step: scores.json} of the exported checkpoints the evaluation directory holds."""
    if eval_dir is None:
        return None
    if not eval_dir.is_dir():
        raise ConfigError(f"--eval {eval_dir}: not a directory; give the run's evaluation directory")
    files = {step: eval_dir / f"step{step}" / "scores.json" for step in steps}
    return {step: read_object(file) for step, file in files.items() if file.is_file()}


def run_name(run_dir: Path, budget: dict[str, Any] | None) -> str:
    """The run as the budget names it, else its path under the workflow's models/ (e.g. micro/seed42),
    else its directory's name: never a machine's absolute path."""
    if isinstance(get(budget, "run"), str) and budget["run"]:
        return budget["run"]
    parts = run_dir.resolve().parts
    if "models" in parts[:-1]:
        below = len(parts) - parts[::-1].index("models")
        return "/".join(parts[below:])
    return parts[-1]


def git_environment(date: int | None = None) -> dict[str, str]:
    """git with no user or system configuration (no hooks, signing, templates or autocrlf), a fixed
    identity and, for commits, a fixed date."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env |= {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C", "TZ": "UTC"}
    env |= {"GIT_AUTHOR_NAME": IDENTITY[0], "GIT_AUTHOR_EMAIL": IDENTITY[1]}
    env |= {"GIT_COMMITTER_NAME": IDENTITY[0], "GIT_COMMITTER_EMAIL": IDENTITY[1]}
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": f"@{date} +0000", "GIT_COMMITTER_DATE": f"@{date} +0000"}
    return env


def git(repo: Path, *args: str, data: bytes | None = None, date: int | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], input=data, capture_output=True, env=git_environment(date)
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def write_blob(repo: Path, content: Path | bytes) -> str:
    # --no-filters: the bytes go in as they are, whatever .gitattributes says.
    if isinstance(content, bytes):
        return git(repo, "hash-object", "-w", "--no-filters", "--stdin", data=content)
    return git(repo, "hash-object", "-w", "--no-filters", "--", str(content.resolve()))


def commit(repo: Path, files: dict[str, Path | bytes], message: str, date: int) -> str:
    """A root commit whose tree holds `files` (a flat directory, as `save_pretrained` writes)."""
    entries = [f"100644 blob {write_blob(repo, files[name])}\t{name}" for name in sorted(files)]
    tree = git(repo, "mktree", data=("\n".join(entries) + "\n").encode())
    return git(repo, "commit-tree", tree, "-m", message, date=date)


def saved_at(checkpoint: Checkpoint) -> int:
    """When the trainer saved the checkpoint, in whole seconds: the commit date."""
    return int((checkpoint.path / INFO).stat().st_mtime)


def message(names: tuple[str, ...], checkpoint: Checkpoint, run: str) -> str:
    seen = checkpoint.info.get("words")
    words = f", {seen:,} words seen" if isinstance(seen, int) and not isinstance(seen, bool) else ""
    return f"{', '.join(names)}: {run} at step {checkpoint.step:,}{words}"


def build(partial: Path, checkpoints: list[Checkpoint], inputs: Inputs) -> None:
    partial.mkdir(parents=True)
    git(partial, "init", "--quiet")
    (partial / ".git" / PARTIAL_MARK).write_text("")
    git(partial, "symbolic-ref", "HEAD", f"refs/heads/{MAIN}")
    by_step = {c.step: c for c in checkpoints}
    for revision in inputs.revisions:
        checkpoint = by_step[revision.step]
        files: dict[str, Path | bytes] = dict(branch_files(checkpoint.path))
        files[CARD] = model_card(revision, inputs).encode("utf-8")
        files[".gitattributes"] = GITATTRIBUTES
        sha = commit(partial, files, message(revision.names, checkpoint, inputs.run), saved_at(checkpoint))
        for name in revision.names:
            git(partial, "update-ref", f"refs/heads/{name}", sha)
    git(partial, "reset", "--hard", "--quiet")  # the working tree: main, the final model
    (partial / ".git" / PARTIAL_MARK).unlink()


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    budget: str | os.PathLike | None = None,
    eval_dir: str | os.PathLike | None = None,
    corpus: str | os.PathLike | None = None,
    track: str | None = None,
) -> dict[str, int]:
    """Write the git repository of the finished run `run_dir` at `out_dir`; return {branch: step}.

    `budget`: the run's budget.json; `eval_dir`: its evaluation directory (`step<N>/scores.json`);
    `corpus`: the manifest.json of the synthetic corpus it trained on; `track`: the BabyLM track the
    budget is held against. Each goes into the model cards;
    a card says what was not given. Every input is checked before anything is written.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if shutil.which("git") is None:
        raise ConfigError("git: not found on PATH; install git (the export writes a git repository)")
    check_out(out_dir)
    checkpoints = finished_checkpoints(run_dir)
    revisions = revisions_of(checkpoints)
    for step in revisions:
        branch_files(run_dir / f"step{step}")  # every exported checkpoint is complete and readable
    by_step = {c.step: c for c in checkpoints}
    corpus_path = Path(corpus) if corpus is not None else None
    budget_data = read_optional(Path(budget) if budget is not None else None, "--budget", "a budget.json")
    inputs = Inputs(
        run=run_name(run_dir, budget_data),
        final_step=checkpoints[-1].step,
        revisions=tuple(Revision(names, step, by_step[step].info) for step, names in revisions.items()),
        budget=budget_data,
        track=track,
        scores=read_scores(Path(eval_dir) if eval_dir is not None else None, list(revisions)),
        corpus=read_optional(corpus_path, "--corpus", "a synthetic corpus's manifest.json"),
        corpus_name=corpus_path.resolve().parent.name if corpus_path is not None else None,
    )
    problem = budget_data is not None and track is not None and budget_problem(track, budget_data)
    if problem:
        print(f"{budget}: {problem} The cards say so.", file=sys.stderr)
    if len(revisions) == 1:
        print(
            f"{run_dir}: no checkpoint.json has a BabyLM `mark` (chck_1M ...): exporting main only",
            file=sys.stderr,
        )
    partial = Path(f"{out_dir}.partial")
    if partial.exists():
        print(f"removing {partial}, left by an export that did not finish", file=sys.stderr)
        shutil.rmtree(partial)
    try:
        build(partial, checkpoints, inputs)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    os.rename(partial, out_dir)  # onto nothing, or onto an empty directory
    return {name: step for step, names in revisions.items() for name in names}
