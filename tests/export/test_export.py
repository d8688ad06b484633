"""`cdsynth export`: a real micro run as a git repository whose branches load alike in transformers 4.51.3
(the BabyLM 2025 pipeline's) and 5.x."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
import transformers
import yaml
from helpers import MICRO_ARCH, micro_settings
from transformers import AutoModelForCausalLM, AutoTokenizer

from cdsynth.errors import ConfigError, DataError
from cdsynth.export import export_run
from cdsynth.export.compat import model_config
from cdsynth.export.repository import IDENTITY
from cdsynth.synth.cli import main
from cdsynth.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
# A literal "<s>", curly quotes, a newline, digits and an accent: tokenisation differences show here.
TEXT = "Once upon a time, <s> the “little” dog said:\nhello 42 times to José."
MARKS = {10: "chck_1M", 20: "chck_2M"}
MODEL_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}
BRANCH_FILES = MODEL_FILES | {"tokenizer_config.json", "README.md", ".gitattributes"}


def mark(run: Path, marks: dict[int, str | None]) -> None:
    """Give checkpoints a BabyLM revision name. The trainer's babylm schedule writes it at 1M, 2M, ...
    words seen (tests/train/test_trainer.py), which this micro run's 30 steps never reach; the words seen
    are the trainer's own."""
    for step, name in marks.items():
        file = run / f"step{step}" / "checkpoint.json"
        info = json.loads(file.read_text()) | {"mark": name}
        mtime = file.stat().st_mtime
        file.write_text(json.dumps(info, indent=2) + "\n")
        os.utime(file, (mtime, mtime))  # the commit date is the checkpoint's save time


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory) -> Path:
    """A micro run saved at steps 10, 20, 30, with a rotary base 4.x would not guess, tied embeddings and
    grouped key/value heads; steps 10 and 20 marked as revisions."""
    out = tmp_path_factory.mktemp("export_run") / "run"
    arch = MICRO_ARCH | {"rope_theta": 500.0, "tie_embeddings": True, "kv_heads": 1}
    cfg = micro_settings(
        seed=5, arch=arch, steps=30, batch_size=8, micro_batch_size=8, lr=3e-3, warmup_steps=4,
        checkpoints={"every": 10}, eval_blocks=8,
    )  # fmt: skip
    train(cfg, prepared["train"], prepared["test"], prepared["tokenizer"], out)
    mark(out, MARKS)
    return out


@pytest.fixture(scope="module")
def inputs(run, tmp_path_factory) -> dict[str, Path]:
    """A budget.json, an evaluation directory (steps 10 and 30 scored) and a corpus manifest, as the
    workflow writes them."""
    root = tmp_path_factory.mktemp("export_inputs")
    budget = {
        "run": "micro/mix/good/cd/r50/seed5",
        "data": {"real_train_words": 123_456, "prompt_words": 7_890, "total_words": 131_346},
        "seen": {"real": 1_800_000, "synthetic": 1_200_000, "total": 3_000_000, "passes_over_real": 14.58},
        "ancillary": [{"role": "good", "run": "micro/seed42", "step": 20, "words_seen": None}],
    }  # `seen.tokens` and the ancillary's `data_words` left out: a card reads them as not recorded
    (root / "budget.json").write_text(json.dumps(budget))
    for step, score in ((10, 51.25), (30, 57.5)):
        (root / "eval" / f"step{step}").mkdir(parents=True)
        scores = {"scores": {"blimp": score, "perplexity": 900.5}, "max_items_per_task": 5}
        (root / "eval" / f"step{step}" / "scores.json").write_text(json.dumps(scores))
    params = {
        "scoring": {"method": "cd", "alpha": 0.1, "strength": 1.0, "penalty": -20.0, "temperature": 1.0},
        "good": {"model": "micro", "seed": 42, "step": 20},
        "amateur": "early:10",
        "prefix_tokens": 32,
        "continuations": 2,
        "new_tokens": 64,
    }
    (root / "corpus").mkdir()
    manifest = {"params": params, "shards": [], "totals": {"rows": 40, "new_tokens": 2560, "tokens": 3880}}
    (root / "corpus" / "manifest.json").write_text(json.dumps(manifest))
    return {
        "budget": root / "budget.json",
        "eval_dir": root / "eval",
        "corpus": root / "corpus" / "manifest.json",
        "track": "strict-small",
    }


@pytest.fixture(scope="module")
def exported(run, inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "repo"
    branches = export_run(run, out, **inputs)
    assert branches == {"chck_1M": 10, "chck_2M": 20, "main": 30}
    return out


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def branches(repo: Path) -> dict[str, str]:
    lines = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads").split("\n")
    return dict(line.split() for line in lines if line)


def checkout(repo: Path, branch: str, into: Path) -> Path:
    """The branch's files, by `git archive` (the repository is left as it is)."""
    tar = subprocess.run(["git", "-C", str(repo), "archive", branch], capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        # The "data" filter where this Python has it (3.10.12+): no links or paths outside `into`.
        archive.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return into


def card(repo: Path, branch: str) -> tuple[dict, str]:
    text = git(repo, "show", f"{branch}:README.md")
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_the_branches_are_main_and_the_marked_checkpoints(exported, run):
    assert set(branches(exported)) == {"main", "chck_1M", "chck_2M"}
    for branch, step in (("main", 30), *((name, step) for step, name in MARKS.items())):
        files = set(git(exported, "ls-tree", "--name-only", branch).split())
        assert files == BRANCH_FILES, branch  # no checkpoint.json, no optimizer or RNG state
        weights = subprocess.run(
            ["git", "-C", str(exported), "show", f"{branch}:model.safetensors"],
            capture_output=True,
            check=True,
        ).stdout
        assert weights == (run / f"step{step}" / "model.safetensors").read_bytes()
        assert git(exported, "rev-list", "--count", branch).strip() == "1"  # no other checkpoint's weights
    # The working tree is main: the final model, loadable from OUT itself.
    assert git(exported, "status", "--porcelain") == ""
    assert (exported / "model.safetensors").read_bytes() == (
        run / "step30" / "model.safetensors"
    ).read_bytes()
    assert not Path(f"{exported}.partial").exists()


def test_the_commits_have_a_fixed_identity_and_the_checkpoints_dates(exported, run):
    for branch, step in (("main", 30), ("chck_1M", 10)):
        fields = git(exported, "log", "-1", "--format=%an|%ae|%cn|%ce|%at|%ct|%s", branch).strip().split("|")
        saved = str(int((run / f"step{step}" / "checkpoint.json").stat().st_mtime))
        assert fields[:6] == [*IDENTITY, *IDENTITY, saved, saved]
        assert fields[6].startswith(f"{branch}: micro/mix/good/cd/r50/seed5 at step {step}")


def test_exporting_the_same_run_again_gives_the_same_commits(exported, run, inputs, tmp_path, monkeypatch):
    # The user's git identity and configuration do not reach the commits.
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Else")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1 +0000")
    export_run(run, tmp_path / "again", **inputs)
    assert branches(tmp_path / "again") == branches(exported)


def test_each_card_says_what_its_revision_has_seen_and_scored(exported, run):
    header, body = card(exported, "chck_1M")
    assert header["library_name"] == "transformers" and "babylm" in header["tags"]
    assert "revision `chck_1M`" in body and "step 10 of 30" in body
    seen = json.loads((run / "step10" / "checkpoint.json").read_text())
    assert f"| words seen | {seen['words']:,} words |" in body and seen["words"] > 0
    assert f"| words seen, real text | {seen['words_real']:,} words |" in body
    assert "| words seen, synthetic text | 0 words |" in body
    assert "| real training text | 123,456 words |" in body
    assert "| prompt text for the synthetic corpus | 7,890 words |" in body
    assert "| tokens seen | not recorded |" in body  # budget.seen.tokens is missing
    assert "- Track: strict-small" in body and "Within the limits: yes" in body
    assert "at most 10,000,000 words of data, and at most 100,000,000 words seen" in body
    assert "contrastive decoding" in body and "CD-Early" in body and "run micro, seed 42, at step 20" in body
    assert "40 samples, 3,880 tokens, of which 2,560 generated" in body
    assert "| `blimp` | 51.25 |" in body and "at most 5 items per task" in body
    assert 'revision="chck_1M"' in body
    _, body = card(exported, "chck_2M")
    assert "this checkpoint (step 20) was not evaluated" in body
    _, body = card(exported, "main")
    assert "the final model" in body and "| `blimp` | 57.5 |" in body and 'revision="main"' in body


def test_a_card_without_the_optional_inputs_says_so(run, tmp_path):
    export_run(run, tmp_path / "repo")
    _, body = card(tmp_path / "repo", "main")
    for what, flag in (("budget file", "--budget"), ("evaluation directory", "--eval")):
        assert f"Not available: the export was given no {what} (`{flag}`)." in body
    assert "Not available: the export was given no corpus manifest (`--corpus`)." in body
    seen = json.loads((run / "step30" / "checkpoint.json").read_text())["words"]
    assert f"| words seen | {seen:,} words |" in body


def test_a_run_without_marks_exports_main_only_and_says_so(run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    mark(copy, {10: None, 20: None})
    assert export_run(copy, tmp_path / "repo") == {"main": 30}
    assert "exporting main only" in capsys.readouterr().err
    assert set(branches(tmp_path / "repo")) == {"main"}


def test_a_marked_final_checkpoint_is_main_and_its_revision_in_one_commit(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    mark(copy, {30: "chck_3M"})
    assert export_run(copy, tmp_path / "repo") == {"chck_1M": 10, "chck_2M": 20, "main": 30, "chck_3M": 30}
    found = branches(tmp_path / "repo")
    assert found["main"] == found["chck_3M"]
    _, body = card(tmp_path / "repo", "main")
    assert "revision `main` and `chck_3M`" in body


def test_a_non_empty_out_is_refused_by_name(run, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=f"OUT {tmp_path / 'out'}: exists and is not empty"):
        export_run(run, tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert export_run(run, tmp_path / "empty")["main"] == 30  # an empty directory is taken


def test_an_unfinished_run_is_refused_naming_its_metrics(run, tmp_path, capsys):
    unfinished = tmp_path / "run"
    shutil.copytree(run, unfinished)
    (unfinished / "metrics.csv").unlink()
    Path(f"{unfinished}.partial").mkdir()
    with pytest.raises(DataError, match=r"metrics.csv: not found, so .* is not a finished training run"):
        export_run(unfinished, tmp_path / "out")
    # The command line gives the same message and exit status 2, and writes nothing.
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(unfinished), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "still training" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_listed_checkpoint_that_is_missing_is_refused(run, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    shutil.rmtree(broken / "step20")
    with pytest.raises(
        DataError, match=r"step20/checkpoint.json: not found, but .*metrics.csv lists step 20"
    ):
        export_run(broken, tmp_path / "out")


@pytest.mark.parametrize(
    ("marks", "problem"),
    [({10: "chck_15M"}, "is not a BabyLM revision name"), ({10: "chck_2M"}, "both are marked chck_2M")],
)
def test_bad_marks_are_refused(run, tmp_path, marks, problem):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    mark(copy, marks)
    with pytest.raises(DataError, match=problem):
        export_run(copy, tmp_path / "out")


def test_missing_optional_inputs_are_refused_before_any_work(run, tmp_path):
    with pytest.raises(ConfigError, match="--budget .*budget.json: file not found"):
        export_run(run, tmp_path / "out", budget=tmp_path / "budget.json")
    with pytest.raises(ConfigError, match="--eval .*: not a directory"):
        export_run(run, tmp_path / "out", eval_dir=tmp_path / "eval")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_killed_exports_partial_is_replaced_and_a_foreign_one_refused(run, tmp_path):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "precious.txt").write_text("not ours")
    with pytest.raises(ConfigError, match="was not left by `cdsynth export`"):
        export_run(run, tmp_path / "out")
    shutil.rmtree(partial)
    (partial / ".git").mkdir(parents=True)
    (partial / ".git" / "cdsynth-export-partial").write_text("")
    assert export_run(run, tmp_path / "out")["main"] == 30
    assert not partial.exists()


@pytest.fixture(scope="module")
def five_only_run(run, tmp_path_factory) -> Path:
    """The run as transformers 5 saves it, before the trainer added the 4.x names: no `rope_theta` or
    `torch_dtype` in config.json, `TokenizersBackend` and load-time keys in tokenizer_config.json."""
    copy = tmp_path_factory.mktemp("five_only") / "run"
    shutil.copytree(run, copy)
    for step in (10, 20, 30):
        config_file = copy / f"step{step}" / "config.json"
        config = json.loads(config_file.read_text())
        del config["rope_theta"], config["torch_dtype"]
        config_file.write_text(json.dumps(config))
        tok_file = copy / f"step{step}" / "tokenizer_config.json"
        tok = json.loads(tok_file.read_text()) | {"tokenizer_class": "TokenizersBackend", "is_local": True}
        tok_file.write_text(json.dumps(tok))
    return copy


def test_transformers_5_fields_are_fixed_in_the_exported_copy_only(five_only_run, tmp_path):
    """The export puts back what 4.x reads, and 5.x still reads the copy as the original."""
    originals = {p: p.read_bytes() for p in five_only_run.rglob("*") if p.is_file()}
    export_run(five_only_run, tmp_path / "repo")
    assert {p: p.read_bytes() for p in five_only_run.rglob("*") if p.is_file()} == originals
    config = json.loads((tmp_path / "repo" / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] == 500.0
    assert config["torch_dtype"] == config["dtype"] == "float32"
    tok = json.loads((tmp_path / "repo" / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast" and "is_local" not in tok
    assert_same_model(tmp_path / "repo", five_only_run / "step30")


def test_a_scaled_rotary_embedding_gets_the_4x_name():
    rope = {"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}
    config = model_config({"model_type": "llama", "rope_parameters": rope, "dtype": "bfloat16"}, Path("c"))
    assert config["rope_scaling"] == {"rope_type": "linear", "factor": 2.0}
    assert config["rope_theta"] == 10000.0 and config["torch_dtype"] == "bfloat16"
    with pytest.raises(DataError, match="no rope_theta"):
        model_config({"model_type": "llama"}, Path("c/config.json"))


def logits_and_ids(directory: Path) -> tuple[torch.Tensor, list[int]]:
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    ids = AutoTokenizer.from_pretrained(directory)(TEXT)["input_ids"]
    with torch.inference_mode():
        return model(torch.tensor([ids])).logits[0], ids


def assert_same_model(exported: Path, original: Path) -> None:
    logits, ids = logits_and_ids(exported)
    want_logits, want_ids = logits_and_ids(original)
    assert ids == want_ids and ids[0] == 1  # BOS first
    torch.testing.assert_close(logits, want_logits, rtol=0, atol=0)


# Run by the main venv's Python with transformers 4.51.3 first on the path: the venv's torch, 4.51's
# transformers, tokenizers and huggingface_hub.
READ_UNDER_4_51 = r"""
import json, sys
import torch, transformers
from transformers import AutoModelForCausalLM, AutoTokenizer
text, found = sys.argv[1], {"transformers": transformers.__version__, "torch": torch.__file__, "branches": {}}
for directory in sys.argv[2:]:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    ids = tokenizer(text)["input_ids"]
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]
    found["branches"][directory] = {
        "class": type(tokenizer).__name__, "ids": ids, "logits": logits.tolist(),
        "rope_theta": model.config.rope_theta, "dtype": str(model.dtype),
    }
print(json.dumps(found))
"""


def transformers_4_51_path() -> str:
    """The site-packages of envs/transformers-4.51.sh's venv (built once, kept under ~/.cache/cdsynth)."""
    made = subprocess.run([str(REPO / "envs" / "transformers-4.51.sh")], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(
            "envs/transformers-4.51.sh could not install transformers 4.51.3 (pip must reach PyPI):\n"
            + made.stderr[-3000:]
        )
    python = Path(made.stdout.strip()) / "bin" / "python"
    probe = "import sys, sysconfig; print(sys.version_info[:2] == tuple(map(int, sys.argv[1:]))); " + (
        "print(sysconfig.get_path('purelib'))"
    )
    same, site = subprocess.run(
        [str(python), "-c", probe, *map(str, sys.version_info[:2])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if same != "True":
        pytest.fail(f"{python} is not Python {sys.version_info[:2]}: its compiled packages cannot load here")
    return site


@pytest.mark.slow
@pytest.mark.parametrize("saved", ["by_the_trainer", "by_transformers_5_alone"])
def test_every_branch_loads_alike_in_transformers_4_51_and_5(saved, run, five_only_run, tmp_path):
    """The BabyLM 2025 pipeline's transformers (4.51.3) and this project's (5.x) read each branch to the
    original checkpoint's token ids and logits, bit for bit."""
    source = run if saved == "by_the_trainer" else five_only_run
    export_run(source, tmp_path / "repo")
    dirs = {}
    for branch in ("main", *MARKS.values()):
        dirs[branch] = checkout(tmp_path / "repo", branch, tmp_path / branch)
        assert {p.name for p in dirs[branch].iterdir()} == BRANCH_FILES
    env = os.environ | {"PYTHONPATH": transformers_4_51_path()}
    old = subprocess.run(
        [sys.executable, "-c", READ_UNDER_4_51, TEXT, *map(str, dirs.values())],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert old.returncode == 0, old.stderr[-3000:]
    found = json.loads(old.stdout)
    assert found["transformers"] == "4.51.3" and found["torch"] == torch.__file__
    assert transformers.__version__.startswith("5.")
    steps = {"main": 30, **{name: step for step, name in MARKS.items()}}
    for branch, directory in dirs.items():
        want_logits, want_ids = logits_and_ids(source / f"step{steps[branch]}")
        logits, ids = logits_and_ids(directory)  # 5.x
        assert ids == want_ids
        torch.testing.assert_close(logits, want_logits, rtol=0, atol=0)
        theirs = found["branches"][str(directory)]
        assert theirs["class"] == "PreTrainedTokenizerFast" and theirs["ids"] == want_ids, branch
        assert theirs["rope_theta"] == 500.0 and theirs["dtype"] == "torch.float32"
        torch.testing.assert_close(torch.tensor(theirs["logits"]), want_logits, rtol=0, atol=0)
