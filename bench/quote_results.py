"""Run the demo (or the mini preset) and quote its tables and findings in the guide and bench/RESULTS.md.

    python bench/quote_results.py demo            # `snakemake --cores all results/table_main.csv`, quoted
    python bench/quote_results.py mini            # the mini preset's main and amateur tables (~2 h, 2 cores)
    python bench/quote_results.py beyond          # the mini preset's repetition controls (~1.5 h, 2 cores)
    python bench/quote_results.py demo --no-run   # quote the finished results in --workdir as they are

The demo's compact table and findings go into README.md, the mini preset's into docs/reproducing.md, its
`beyond` table (not a paper table, so with its corpora's repetition statistics instead of the paper's
findings) into README.md (each run's `page`), and the whole tables into bench/RESULTS.md. Every quoted
block names the commit that produced it, the machine and the wall time, and lies between markers
(`<!-- quoted: NAME -->` ... `<!-- end quoted: NAME -->`) that this script rewrites whole, so a quoted
table is always one command away from what the code produces. The commit must be clean (the quoted numbers
would otherwise belong to no commit); `--no-run` also checks, with `snakemake -n`, that the results are up
to date with it.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from cdsynth.report.corpora import REAL_SPLIT
from cdsynth.report.statistics import TASK_LABELS
from cdsynth.report.tables import read_table
from cdsynth.spec.experiments import experiments_of

REPO = Path(__file__).resolve().parents[1]
# The compact table of a run's page: the paper's poster columns (BLiMP Supplement and WUG rho are in
# RESULTS.md).
COMPACT_TASKS = ["perplexity", "blimp", "entity_tracking", "ewok", "wug_accuracy", "reading", "eye_tracking"]
# The tasks on which the paper's CD-Early beats No-Contrast (finding b).
REASONING_TASKS = ["entity_tracking", "ewok", "wug_accuracy"]
# Columns of a Corpora section's statistics.csv (cdsynth.report.corpora.COLUMNS) quoted beside the tables.
REPEATS, LONGEST = "repeated 4-grams", "longest repeat (mean tokens)"
DISTINCT, DIVERSITY = "distinct-2 (tokens)", "diversity (the authors' score)"


@dataclass(frozen=True)
class Run:
    name: str
    configfile: Path | None
    tables: list[str]
    page: Path  # where the compact table and the findings are quoted
    paper: bool = True  # its tables are the paper's, so its findings (a)-(c) are stated


RUNS = {
    "demo": Run("demo", None, ["main"], REPO / "README.md"),
    "mini": Run(
        "mini", REPO / "workflow/presets/mini.yaml", ["main", "amateur"], REPO / "docs/reproducing.md"
    ),
    "beyond": Run("beyond", REPO / "workflow/presets/mini.yaml", ["beyond"], REPO / "README.md", paper=False),
}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def machine() -> str:
    """The CPU model, cores and memory, as the benchmark entries name their machine."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        kib = int(re.search(r"MemTotal:\s*(\d+)", meminfo.read_text()).group(1))
        memory = f", {kib / 2**20:.0f} GiB"
    return f"{os.cpu_count()}-core {model}{memory}"


def snakemake_command(run: Run, workdir: Path, *extra: str) -> list[str]:
    targets = [f"results/table_{table}.csv" for table in run.tables]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "all"]
    command += [*extra, *targets, "--directory", str(workdir)]
    return command + (["--configfile", str(run.configfile)] if run.configfile else [])


def run_workflow(run: Run, workdir: Path) -> float:
    """The workflow from empty results, timed as a whole; its output goes to <workdir>/quote_<name>.log."""
    if (workdir / "results" / f"table_{run.tables[0]}.csv").exists():
        sys.exit(f"{workdir}/results already holds a run: move it away, or quote it as it is with --no-run")
    log = workdir / f"quote_{run.name}.log"
    start = time.monotonic()
    with open(log, "w") as handle:
        done = subprocess.run(snakemake_command(run, workdir), stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"the workflow failed (exit {done.returncode}); see {log}")
    return time.monotonic() - start


def check_up_to_date(run: Run, workdir: Path) -> None:
    dry = subprocess.run(snakemake_command(run, workdir, "-n"), capture_output=True, text=True)
    if dry.returncode or "Nothing to be done" not in dry.stdout + dry.stderr:
        sys.exit(f"the results in {workdir} are not what this commit produces (snakemake -n plans jobs)")


def load_rows(run: Run, workdir: Path) -> list[dict[str, str]]:
    """Every table's rows, the baseline once, in table order."""
    rows: dict[str, dict[str, str]] = {}
    for table in run.tables:
        for row in read_table(workdir / "results" / f"table_{table}.csv"):
            rows.setdefault(row["experiment"], row)
    return list(rows.values())


def roles(config: dict) -> dict[str, str]:
    """Each experiment's part in the paper's findings, from its definition (not its name)."""
    found = {}
    for name, experiment in experiments_of(config).items():
        corpus = experiment.corpus
        truncated = corpus is not None and (corpus.scoring.top_k or corpus.scoring.top_p)
        if corpus is None:
            found[name] = "baseline"
        elif truncated or experiment.mixture.ratio != config["mix"]["ratio"]:
            continue
        elif corpus.scoring.method == "ancestral":
            found[name] = "no-contrast"
        elif corpus.scoring.method == "vhead":
            found[name] = "v-head"
        else:
            found[name] = f"cd-{corpus.amateur.kind}"
    return found


def number(row: dict[str, str], task: str) -> float:
    return float(row[f"{task}_mean"])


def significant(row: dict[str, str], task: str) -> bool:
    return row[f"{task}_sig"] == "True"


def interval(row: dict[str, str], task: str) -> str:
    return f"[{float(row[f'{task}_diff_low']):+.2f}, {float(row[f'{task}_diff_high']):+.2f}]"


def gain(row: dict[str, str]) -> str:
    return f"{float(row['muDeltaREL']):+.2f}%"


def compact_table(rows: list[dict[str, str]]) -> str:
    header = ["Experiment", "μΔREL", *(TASK_LABELS[task] for task in COMPACT_TASKS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for k, row in enumerate(rows):
        cells = [f"{number(row, t):.2f}" + ("*" if significant(row, t) else "") for t in COMPACT_TASKS]
        lines.append("| " + " | ".join([row["experiment"], "-" if k == 0 else gain(row), *cells]) + " |")
    return "\n".join(lines)


def verdict(hits: int, total: int) -> str:
    return "reproduced" if hits == total else "not reproduced" if hits == 0 else "partly reproduced"


def findings(rows: list[dict[str, str]], role: dict[str, str], seeds: int) -> list[str]:
    """The paper's findings (a)-(c), each stated from the quoted numbers: reproduced or not."""
    by_role = {role[row["experiment"]]: row for row in rows if row["experiment"] in role}
    base, plain = by_role["baseline"], by_role.get("no-contrast")
    mixtures = [row for row in rows if row is not base]
    lower = [
        row
        for row in mixtures
        if significant(row, "perplexity") and number(row, "perplexity") < number(base, "perplexity")
    ]
    ppl = "; ".join(
        f"{row['experiment']} {number(row, 'perplexity'):.2f} {interval(row, 'perplexity')}"
        for row in mixtures
    )
    order = " < ".join(
        row["experiment"] for row in sorted([base, *mixtures], key=lambda r: number(r, "perplexity"))
    )
    out = [
        f"**(a) Mixtures lower perplexity: {verdict(len(lower), len(mixtures))}** ({len(lower)} of "
        f"{len(mixtures)} mixtures significantly below the baseline's {number(base, 'perplexity'):.2f}: "
        f"{ppl}; 95% intervals of the difference, {seeds} seeds). Ordering here: {order}; the paper's: "
        "No-Contrast < CD-Early < No-Contrast-V-Head < Baseline, with No-Contrast significant."
    ]
    early = by_role.get("cd-early")
    if early is not None and plain is not None:
        above = [t for t in REASONING_TASKS if number(early, t) > number(plain, t)]
        detail = ", ".join(
            f"{TASK_LABELS[t]} {number(early, t):.2f} vs {number(plain, t):.2f}" for t in REASONING_TASKS
        )
        out.append(
            f"**(b) CD beats No-Contrast on Entity Tracking, EWoK and WUG: {verdict(len(above), 3)}** "
            f"({early['experiment']} against No-Contrast: {detail}; the paper: 30.38 vs 28.14, 53.80 vs "
            "53.17, 70.55 vs 64.67)."
        )
    amateurs = {kind: by_role[kind] for kind in ("cd-early", "cd-small", "cd-dropout") if kind in by_role}
    if len(amateurs) > 1:
        best = max(amateurs.values(), key=lambda row: float(row["muDeltaREL"]))
        ranking = ", ".join(f"{row['experiment']} {gain(row)}" for row in amateurs.values())
        out.append(
            f"**(c) The early amateur is the best amateur: "
            f"{'reproduced' if best is amateurs.get('cd-early') else 'not reproduced'}** (μΔREL {ranking}; "
            "the paper: CD-Early-500 +4.90%, CD-Small-20 +3.55%, CD-Drop-0.7 +3.29%)."
        )
    else:
        out.append("**(c) The early amateur against small and dropout amateurs:** not in this table.")
    signs = ", ".join(f"{row['experiment']} {gain(row)}" for row in mixtures)
    out.append(f"μΔREL of the mixtures: {signs} (the paper: No-Contrast +2.96%, CD-Early-500 +4.90%).")
    return out


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "wall time not measured (--no-run)"
    if seconds >= 3600:
        return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def provenance(commit: str, seconds: float | None, jobs: int) -> str:
    day = datetime.date.today().isoformat()
    return f"commit `{commit}`, {day}, {machine()}: {jobs} jobs, {duration(seconds)}"


def job_count(workdir: Path) -> int:
    return sum(1 for _ in (workdir / "results" / "benchmarks").rglob("*.tsv"))


def corpus_line(run: Run, workdir: Path) -> str:
    """Repetition and diversity of each synthetic corpus of the first table (its Corpora section)."""
    path = workdir / "results" / "corpora" / run.tables[0] / "statistics.csv"
    with open(path, newline="") as handle:
        stats = list(csv.DictReader(handle))

    def share(row: dict[str, str], column: str) -> str:
        return f"{100 * float(row[column]):.1f}%" if row[column] else "n/a"

    parts = [
        f"{row['corpus']}: {share(row, REPEATS)} of 4-grams repeated within a sample, longest repeat "
        f"{float(row[LONGEST]):.0f} tokens on average, distinct-2 {float(row[DISTINCT]):.2f}, the authors' "
        f"diversity {float(row[DIVERSITY]):.3f}"
        for row in stats
        if row["corpus"] != REAL_SPLIT  # the real train split's row has only its contamination
    ]
    return f"Corpus statistics (`results/corpora/{run.tables[0]}/statistics.csv`): {'; '.join(parts)}."


def replace_block(path: Path, name: str, body: str) -> None:
    start, end = f"<!-- quoted: {name} -->", f"<!-- end quoted: {name} -->"
    text = path.read_text()
    if start not in text or end not in text:
        sys.exit(f"{path}: no `{start}` ... `{end}` markers to rewrite")
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", choices=sorted(RUNS))
    parser.add_argument("--workdir", type=Path, default=REPO, help="where results/ is (default: here)")
    parser.add_argument("--no-run", action="store_true", help="quote the finished results as they are")
    args = parser.parse_args()
    run = RUNS[args.run]
    if git("status", "--porcelain", "--untracked-files=no"):
        sys.exit("the checkout has uncommitted changes: commit them, so the quoted numbers name their commit")
    commit = git("rev-parse", "--short", "HEAD")
    seconds = None
    if args.no_run:
        check_up_to_date(run, args.workdir)
    else:
        seconds = run_workflow(run, args.workdir)
    config = yaml.safe_load((run.configfile or REPO / "config.yaml").read_text())
    rows = load_rows(run, args.workdir)
    seeds = len(config["mix"]["seeds"])
    where = provenance(commit, seconds, job_count(args.workdir))
    tables = "\n\n".join(
        (args.workdir / "results" / f"table_{table}.md").read_text().split("\n", 2)[2].strip()
        for table in run.tables
    )
    corpora = corpus_line(run, args.workdir)
    stated = findings(rows, roles(config), seeds) if run.paper else [corpora]
    compact = "\n".join(
        [
            f"Measured at {where} (`python bench/quote_results.py {run.name}` regenerates this block; "
            "`*`: the 95% paired-bootstrap interval of the difference from the baseline excludes 0):",
            "",
            compact_table(rows),
            "",
            *(f"- {line}" for line in stated),
        ]
    )
    results = "\n".join([f"{where}. The tables as the workflow wrote them:", "", tables, "", corpora])
    replace_block(run.page, run.name, compact)
    replace_block(REPO / "bench" / "RESULTS.md", run.name, results)
    print(f"quoted the {run.name} run ({where}) in {run.page.relative_to(REPO)} and bench/RESULTS.md")


if __name__ == "__main__":
    main()
