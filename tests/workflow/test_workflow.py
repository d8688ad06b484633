"""The Snakemake workflow end to end on a tiny config: real jobs, real files, real errors."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import signal
import subprocess
import time
from html import escape as html_escape
from pathlib import Path

import datasets
import pytest
import yaml
from helpers import CD, REPO, SNAKEMAKE, SYNTH, checkout, dry_run_from, job_counts, snakemake, tiny_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from cdsynth.io import read_arrow, read_json, sha256_file
from cdsynth.report.summaries import read_history
from cdsynth.report.tables import columns, read_table
from cdsynth.resumable import work_path
from cdsynth.synth.manifest import shard_metadata

# Snakemake end to end on the micro config: minutes, outside the fast tier (`pytest -m "not slow"`).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus_dir):
    workdir = tmp_path_factory.mktemp("workflow")
    config = tiny_config(corpus_dir)
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def test_baseline_checkpoints_are_built_and_loadable(built):
    workdir, _ = built
    run = workdir / "results/models/micro/seed42"
    assert sorted(p.name for p in run.glob("step*")) == ["step10", "step20"]
    model = AutoModelForCausalLM.from_pretrained(run / "step20")
    assert model.config.num_hidden_layers == 2
    assert (run / "metrics.csv").exists() and (run / "curve.png").exists()
    assert (workdir / "resources/downloads/tinystories_v1_valid_head.txt.xz").exists()
    scores = read_json(workdir / "results/eval/micro/seed42/step20/scores.json")
    assert set(scores["scores"]) == {
        "perplexity",
        "blimp",
        "blimp_supplement",
        "ewok",
        "entity_tracking",
        "wug_accuracy",
        "wug_spearman",
        "eye_tracking",
        "reading",
    }
    assert (workdir / "results/eval/micro/seed42/step10/predictions.parquet").exists()
    for rule in ("corpus", "tokenizer", "train_baseline/micro/seed42", "evaluate/micro/seed42"):
        assert (workdir / f"results/logs/{rule}.log").exists()
        assert (workdir / f"results/benchmarks/{rule}.tsv").exists()


def test_up_to_date_run_has_nothing_to_do(built):
    workdir, config = built
    result = snakemake(workdir, config, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_a_training_value_reruns_only_training(built):
    workdir, config = built
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["train"]["lr"] = 5e-4
    result = snakemake(workdir, edited, "-n")
    assert result.returncode == 0
    expected = {
        "train_baseline": 2,
        "synth_shard": 4,
        "synth_manifest": 2,
        "synth_tokens": 2,
        "train_mixture": 4,
        "evaluate": 6,
        "experiment_summary": 3,
        "table": 1,
        "describe_corpus": 2,
        "corpora": 1,
        "budget": 4,  # the mixtures': GOOD retrains; a baseline's budget does not depend on its lr
        "budget_table": 1,
        "all": 1,
        "total": 33,
    }
    assert job_counts(result.stdout + result.stderr) == expected


def test_changing_the_track_checks_every_run_and_reruns_only_the_budget_table(built):
    """The track checks runs and defines none: no count, training or evaluation reruns."""
    workdir, config = built
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["babylm"]["track"] = "strict" if config["babylm"]["track"] != "strict" else "strict-small"
    result = snakemake(workdir, edited, "-n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert job_counts(result.stdout + result.stderr) == {"budget_table": 1, "table": 1, "all": 1, "total": 3}


def test_editing_one_corpus_reruns_only_that_corpus(built):
    workdir, config = built
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["experiments"]["CD-Early-10"]["corpus"]["alpha"] = 0.2
    result = snakemake(workdir, edited, "-n")
    assert result.returncode == 0
    assert job_counts(result.stdout + result.stderr) == {
        "synth_shard": 2,
        "synth_manifest": 1,
        "synth_tokens": 1,
        "train_mixture": 2,
        "evaluate": 2,
        "experiment_summary": 1,
        "table": 1,
        "describe_corpus": 1,
        "corpora": 1,
        "budget": 2,
        "budget_table": 1,
        "all": 1,
        "total": 16,
    }


def test_renaming_an_experiment_retrains_nothing(built):
    workdir, config = built
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["experiments"]["Plain"] = edited["experiments"].pop("No-Contrast")
    edited["tables"]["main"] = ["Baseline", "Plain", "CD-Early-10"]
    result = snakemake(workdir, edited, "-n")
    assert result.returncode == 0
    assert job_counts(result.stdout + result.stderr) == {
        "experiment_summary": 1,
        "budget_table": 1,  # its rows are named by experiment
        "table": 1,
        "all": 1,
        "total": 4,
    }


def test_code_changes_rerun_by_content_not_by_file_time(built, tmp_path):
    workdir, config = built
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))  # earlier tests leave edited ones
    copy = checkout(tmp_path)
    assert dry_run_from(copy, workdir) == {}  # a fresh checkout, or `touch`, reruns nothing (no profile)
    module = copy / "src/cdsynth/eval/lm_scoring.py"
    module.write_text(module.read_text() + "\n# A comment is not code.\n")
    assert dry_run_from(copy, workdir) == {}
    module.write_text(module.read_text() + "\nUNUSED = 1\n")
    counts = dry_run_from(copy, workdir)  # evaluations use lm_scoring; nothing upstream of them does
    assert counts["evaluate"] == 6 and counts["experiment_summary"] == 3 and counts["table"] == 1
    assert not {"train_baseline", "synth_shard", "train_mixture"} & set(counts)
    script = copy / "scripts/write_table.py"
    module.write_text(module.read_text().removesuffix("\nUNUSED = 1\n"))
    script.write_text(script.read_text() + "\nUNUSED = 1\n")
    assert dry_run_from(copy, workdir) == {"table": 1, "all": 1, "total": 2}


def test_the_main_table_has_every_column_filled(built):
    workdir, _ = built
    rows = read_table(workdir / "results/table_main.csv")
    assert [row["experiment"] for row in rows] == ["Baseline", "No-Contrast", "CD-Early-10"]
    assert all(value != "" for row in rows for value in row.values())
    assert set(rows[0]) == set(columns(yaml.safe_load((REPO / "config.yaml").read_text())["stats"]["tasks"]))
    baseline = rows[0]
    assert float(baseline["muDeltaREL"]) == 0 and float(baseline["blimp_p"]) == 1.0
    assert all(row["seeds"] == "2" for row in rows)
    summary = read_json(workdir / "results/experiments/No-Contrast/summary.json")
    assert float(rows[1]["blimp_mean"]) == pytest.approx(summary["tasks"]["blimp"]["mean"], abs=1e-4)
    markdown = (workdir / "results/table_main.md").read_text()
    for wug in ("wug_accuracy", "wug_spearman"):
        assert f"{float(rows[1][f'{wug}_mean']):.2f} ± {float(rows[1][f'{wug}_std']):.2f}" in markdown
    for figure in ("main_gains", "main_curves"):
        for ext in ("png", "pdf"):
            assert (workdir / f"results/figures/{figure}.{ext}").stat().st_size > 1000


def test_mixture_runs_train_on_their_synthetic_ratio(built):
    workdir, _ = built
    run = workdir / f"results/models/micro/mix/micro-seed42-step20/{CD}/r0.3/seed43"
    history = read_history(run / "metrics.csv")
    assert history[-1]["synthetic_ratio"] == pytest.approx(0.3, abs=0.02)
    meta = read_json(workdir / SYNTH / CD / "tokens/meta.json")
    assert meta["num_documents"] > 0 and meta["held_out_samples"] == 1  # ceil(5% of 16 samples)


def test_every_run_has_its_budget_and_its_official_files_and_exports(built):
    workdir, config = built
    run = "results/models/micro/seed42"
    budget = read_json(workdir / "results/budget/micro/seed42/budget.json")
    with open(workdir / run / "metrics.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert budget["run"] == run and budget["seen"]["real"] == int(last["words_real"]) > 0
    table = (workdir / "results/budget_main.md").read_text()
    assert table.startswith(f"Track: {config['babylm']['track']}") and "| CD-Early-10 |" in table
    submission = workdir / "results/eval/micro/seed42/submission/micro-seed42"
    assert (submission / "all_full_preds_and_fast_scores_causal.json").is_file()
    assert "comps" in (submission / "cdsynth_status.json").read_text().lower()
    result = snakemake(workdir, config, "--cores", "1", "results/export/micro/seed42")
    assert result.returncode == 0, result.stderr[-3000:]
    repo = workdir / "results/export/micro/seed42"
    command = ["git", "-C", str(repo), "branch", "--format=%(refname:short)"]
    heads = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    assert heads == ["main"], "the micro runs see far fewer than 1M words: no BabyLM mark"
    assert "strict-small" in (repo / "README.md").read_text() or config["babylm"]["track"] != "strict-small"


def test_the_report_holds_the_tables_and_figures(built):
    workdir, config = built
    result = snakemake(workdir, config, "--report", str(workdir / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "table_main.csv" in html and "main_gains.png" in html
    samples = (workdir / "results/corpora/main/samples.html").read_text()
    for name in ("ancestral", CD):
        shard = read_arrow(workdir / SYNTH / name / "shard-00000.arrow").to_pylist()
        assert html_escape(tokenizer_decode(workdir, shard[0])) in samples, name
    assert "Corpora" in html and "samples.html" in html


def readme_quick_start() -> list[list[str]]:
    """The Snakemake commands of the README's quick start, as written there (comments dropped)."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash\n")[2].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("snakemake ")]


def test_the_readme_quick_start_builds_a_table_and_a_report(tmp_path, corpus_dir):
    """Exactly the README's commands (the table target, then the report), on the micro config."""
    commands = readme_quick_start()
    assert [command[-1] for command in commands] == ["results/table_main.csv", "results/report.html"]
    config = tiny_config(corpus_dir)
    for command in commands:
        result = snakemake(tmp_path, config, *command[1:], timeout=900)
        assert result.returncode == 0, (command, result.stderr[-3000:])
    html = (tmp_path / "results/report.html").read_text(errors="replace")
    for item in ("table_main.csv", "main_gains.png", "main_curves.png", "main/samples", "main_corpora.png"):
        assert item in html, item


def test_synthetic_corpora_are_built_with_the_early_amateur(built):
    workdir, _ = built
    for name in ("ancestral", CD):
        manifest = read_json(workdir / SYNTH / name / "manifest.json")
        assert manifest["totals"]["new_tokens"] == 160 and len(manifest["shards"]) == 2
    shard = read_arrow(workdir / SYNTH / CD / "shard-00000.arrow")
    assert shard_metadata(shard)["amateur"] == "results/models/micro/seed42/step10"
    assert shard_metadata(shard)["expert"] == "results/models/micro/seed42/step20"


def tokenizer_decode(workdir: Path, row: dict) -> str:
    """The generated part of a shard row, as the corpora page shows it (its first 60 tokens)."""
    tokenizer = AutoTokenizer.from_pretrained(workdir / "results/tokenizer")
    return tokenizer.decode(row["input_ids"][row["prefix_len"] : row["prefix_len"] + 60])


def test_every_corpus_has_a_card_and_statistics_and_loads_with_datasets(built, tmp_path):
    workdir, _ = built
    for name in ("ancestral", CD):
        corpus = workdir / SYNTH / name
        stats = read_json(corpus / "stats.json")
        assert stats["samples"] == 16 and stats["generated_tokens"] == 160
        card = (corpus / "README.md").read_text()
        assert card.startswith("---\n") and "load_dataset" in card
        loaded = datasets.load_dataset(str(corpus), split="train", cache_dir=str(tmp_path / "hf"))
        assert loaded.num_rows == 16
        assert set(loaded.column_names) == {"input_ids", "text", "prompt_id", "continuation", "prefix_len"}


def test_synthesis_rebuilt_from_scratch_is_byte_identical(built):
    workdir, config = built
    before = {p.name: read_json(p / "manifest.json")["shards"] for p in (workdir / SYNTH).iterdir()}
    shutil.rmtree(workdir / SYNTH)
    assert snakemake(workdir, config, "synth_all").returncode == 0
    assert {p.name: read_json(p / "manifest.json")["shards"] for p in (workdir / SYNTH).iterdir()} == before


def start_killable(
    workdir: Path, config: dict, target: str, cores: int
) -> tuple[list[str], subprocess.Popen]:
    """Snakemake for `target`, in its own session so that the whole run can be killed."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [*SNAKEMAKE[:-1], str(cores), target, "--directory", str(workdir)]
    command += ["--configfile", str(workdir / "config.yaml")]
    log = open(workdir / "killed_run.log", "w")  # noqa: SIM115 (the child keeps it; closed with the run)
    return command, subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)


def kill_when(proc: subprocess.Popen, workdir: Path, ready) -> None:
    """kill -9 the whole Snakemake run once `ready()` holds, while a job is still working."""
    deadline = time.monotonic() + 300
    while not ready() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert proc.poll() is None, (workdir / "killed_run.log").read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def rerun(command: list[str]) -> subprocess.CompletedProcess:
    subprocess.run([*command[:-4], "--unlock", *command[-4:]], check=True, capture_output=True)
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_killed_synthesis_keeps_finished_shards(built):
    workdir, config = built
    corpus = workdir / SYNTH / CD
    uninterrupted = {path.name: sha256_file(path) for path in corpus.glob("shard-*.arrow")}
    shutil.rmtree(corpus)
    command, proc = start_killable(workdir, config, f"{SYNTH}/{CD}/manifest.json", cores=1)
    # Killed once Snakemake has recorded the first shard as done, while the second one is being generated.
    kill_when(proc, workdir, lambda: "1 of 3 steps" in (workdir / "killed_run.log").read_text())
    finished = sorted(corpus.glob("shard-*.arrow"))
    assert len(finished) == 1, "one shard done, the other killed midway"
    done_at = finished[0].stat().st_mtime_ns
    rerun(command)
    assert finished[0].stat().st_mtime_ns == done_at
    assert {path.name: sha256_file(path) for path in corpus.glob("shard-*.arrow")} == uninterrupted
    assert (corpus / "manifest.json").exists()


def test_killed_training_resumes_from_its_last_save(built):
    workdir, config = built
    run = workdir / "results/models/micro/seed43"
    uninterrupted = sha256_file(run / "step20/model.safetensors")
    shutil.rmtree(run)
    # The threads of the uninterrupted run, so that the float sums are the same.
    command, proc = start_killable(workdir, config, "results/models/micro/seed43", cores=2)
    kill_when(proc, workdir, lambda: (work_path(run) / "state.pt").exists())  # saved at step 10 of 20
    assert not run.exists()
    result = rerun(command)
    log = (workdir / "results/logs/train_baseline/micro/seed43.log").read_text()
    assert "resuming from step 10" in log, log[-2000:] + result.stderr[-2000:]
    assert sha256_file(run / "step20/model.safetensors") == uninterrupted


def test_killed_evaluation_keeps_the_checkpoints_it_finished(built):
    workdir, config = built
    out = workdir / "results/eval/micro/seed43"
    uninterrupted = {step: read_json(out / f"{step}/scores.json")["scores"] for step in ("step10", "step20")}
    shutil.rmtree(out)
    command, proc = start_killable(workdir, config, "results/eval/micro/seed43", cores=2)
    # Killed once step10 is evaluated, while step20 is.
    kill_when(proc, workdir, lambda: (work_path(out) / "step10/scores.json").exists())
    assert not out.exists()
    result = rerun(command)
    log = (workdir / "results/logs/evaluate/micro/seed43.log").read_text()
    assert "keeping step 10, evaluated by an earlier attempt" in log, log[-2000:] + result.stderr[-2000:]
    assert {step: read_json(out / f"{step}/scores.json")["scores"] for step in uninterrupted} == uninterrupted
    assert not work_path(out).exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["train"].update(lr=-1), "train.lr: -1 is less than the minimum of 0"),
        (lambda c: c["train"].update(steps="many"), "train.steps: 'many' is not of type 'integer'"),
        (
            lambda c: c["corpus"]["sources"]["gutenberg"].update(format="xml"),
            "corpus.sources.gutenberg.format",
        ),
        (lambda c: c["train"].update(learning_rate=1), "'learning_rate' was unexpected"),
        (lambda c: c["baseline"].update(huge=[1]), "baseline.huge: no such model"),
        (lambda c: c["train"].update(batch_size=6), "train.batch_size: 6 is not a multiple"),
        (
            lambda c: c["eval"].update(data_dir="/nowhere"),
            "/nowhere/blimp_filtered: the blimp data is missing",
        ),
        (  # 500,000 steps x 8 x 32 tokens: up to 128M words seen, over strict-small's 100M
            lambda c: c["train"].update(steps=500_000) or c["babylm"].update(track="strict-small"),
            "results/models/micro/seed42: sees 128,000,000 words, above the 100,000,000 allowed by the "
            "strict-small track: 500000 steps x 8 x 32 = 128,000,000 tokens",
        ),
    ],
)
def test_bad_config_is_rejected_before_any_job(tmp_path, corpus_dir, edit, message):
    config = tiny_config(corpus_dir)
    edit(config)
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_missing_source_file_is_named_before_any_job(tmp_path, corpus_dir):
    config = tiny_config(corpus_dir)
    config["corpus"]["sources"]["gutenberg"]["train"] = [str(tmp_path / "nowhere/*.txt")]
    result = snakemake(tmp_path, config)
    assert result.returncode != 0
    assert str(tmp_path / "nowhere/*.txt") in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_the_paper_preset_trains_and_uses_the_authors_small_amateur():
    """CD-Small-20's BAD is small_20 seed 42 at step 2500: only that run is trained, that checkpoint used."""
    command = [*SNAKEMAKE, "-n", "--configfile", str(REPO / "workflow/presets/paper.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.strip() for line in result.stdout.splitlines()]
    outputs = {line.split()[-1] for line in lines if line.startswith("output:")}
    assert {path for path in outputs if path.startswith("results/models/small-20/")} == {
        "results/models/small-20/seed42"
    }
    corpus = "results/synth/base-seed43-step2500/cd_small-small-20-seed42-step2500_s1_a0.1_pen-20"
    assert f"{corpus}/manifest.json" in outputs
    shard_inputs = [
        lines[i - 1] for i, line in enumerate(lines) if line == f"output: {corpus}/shard-00000.arrow"
    ]
    assert shard_inputs == [
        "input: results/models/base/seed43, results/models/small-20/seed42, results/corpus/seed.arrow"
    ]


def test_a_shard_copied_from_another_corpus_is_refused(built):
    """A CD shard copied into the ancestral corpus once reran mixtures and tables with exit status 0."""
    workdir, config = built  # last of the module's tests on `built`: it leaves the corpus broken
    target = workdir / SYNTH / "ancestral" / "shard-00001.arrow"
    table = workdir / "results/table_main.csv"
    before = table.read_bytes()
    shutil.copyfile(workdir / SYNTH / CD / "shard-00001.arrow", target)
    result = snakemake(workdir, config, "results/table_main.csv")
    assert result.returncode != 0
    assert "shard-00001.arrow: not shard 1 of this corpus (settings that differ: " in result.stderr
    assert table.read_bytes() == before
