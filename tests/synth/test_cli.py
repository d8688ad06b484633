"""The `cdsynth generate` command: a corpus from two checkpoints, resumed, and bad input refused early."""

from __future__ import annotations

import importlib.util
import shutil

import pyarrow as pa
import pytest

from cdsynth.io import read_json, sha256_file, write_arrow
from cdsynth.synth.cli import main as cli_main

# Settings the micro models take: 0.2k tokens = 10 prompts x 2 continuations x 10 new tokens.
SMALL = ["--tokens", "0.2k", "--new-tokens", "10", "--continuations", "2", "--batch-size", "8"]


def test_cli_generates_a_corpus_from_two_checkpoints(micro_run, prepared, tmp_path, capsys):
    out = tmp_path / "corpus"
    argv = [
        "generate",
        "--expert",
        str(micro_run / "step40"),
        "--amateur",
        str(micro_run / "step20"),
        "--method",
        "cd",
        "--alpha",
        "0.1",
        "--top-k",
        "50",
        "--tokens",
        "0.2k",
        "--new-tokens",
        "10",
        "--continuations",
        "2",
        "--shards",
        "2",
        "--batch-size",
        "8",
        "--prompts",
        str(prepared["corpus"] / "seed.arrow"),
        "--out",
        str(out),
    ]
    cli_main(argv)
    manifest = read_json(out / "manifest.json")
    assert manifest["totals"]["new_tokens"] == 200 and len(manifest["shards"]) == 2
    assert manifest["params"]["scoring"]["top_k"] == 50
    stats = read_json(out / "stats.json")
    assert stats["samples"] == 20 and stats["generated_tokens"] == 200
    card = (out / "README.md").read_text()
    assert "cd" in card and "# corpus\n" in card and 'load_dataset("path/to/corpus"' in card
    for path in out.iterdir():  # nothing published names the work directory it was made in
        assert b".partial" not in path.read_bytes(), path.name
    first = sha256_file(out / "shard-00000.arrow")
    cli_main(argv)  # a rerun keeps finished shards made with the same settings
    assert "kept" in capsys.readouterr().err and sha256_file(out / "shard-00000.arrow") == first


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "cd"], "needs an amateur"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--alpha", "1.5"], "alpha: 1.5 must be in (0, 1)"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--top-p", "0"], "top_p: 0.0 must be in (0, 1]"),
        (["--method", "ancestral", "--top-k", "0"], "top_k: 0 must be >= 1"),
        (["--method", "cd", "--amateur-dropout", "0.5", "--backend", "vllm"], "cannot run on --backend vllm"),
        (["--method", "ancestral", "--backend", "vllm", "--tensor-parallel", "0"], "--tensor-parallel 0"),
        (
            ["--method", "ancestral", "--backend", "vllm", "--no-repeat-ngram", "3"],
            "--backend vllm: no_repeat_ngram: the vllm backend cannot apply it",
        ),
        (["--method", "ancestral", "--min-p", "1"], "min_p: 1.0 must be in (0, 1)"),
    ],
)
def test_cli_rejects_bad_input_before_generating(micro_run, prepared, tmp_path, capsys, extra, message):
    argv = [
        "generate",
        "--expert",
        str(micro_run / "step40"),
        "--prompts",
        str(prepared["corpus"] / "seed.arrow"),
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_vllm_backend_without_vllm_says_how_to_install_it(micro_run, prepared, tmp_path, capsys):
    argv = ["generate", "--expert", str(micro_run / "step40"), "--method", "ancestral", "--backend", "vllm"]
    argv += [*SMALL, "--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        cli_main(argv)
    assert "envs/vllm-cpu.sh" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def refusal(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["generate", *argv])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shards", "0"], "shards: 0 must be >= 1"),
        (["--shards", "-1"], "shards: -1 must be >= 1"),
        (["--prefix-tokens", "-3"], "prefix_tokens: -3 must be >= 0"),
        (["--new-tokens", "0"], "new_tokens: 0 must be >= 1"),
        (["--continuations", "0"], "continuations: 0 must be >= 1"),
        (["--batch-size", "0"], "batch_size: 0 must be >= 1"),
        (["--batch-size", "many"], "'many': write a whole number or auto"),
        (["--threads", "0"], "--threads 0: must be >= 1"),
        (["--tokens", "inf"], "'inf' is not a token count"),
        (["--shards", "20"], "shards: 20 shards for 10 prompt(s) would leave empty shards"),
        (["--new-tokens", "60"], "BOS + prefix + new tokens = 80 exceeds the positions of --expert"),
        (["--device", "cuda:7"], "visible CUDA device"),
        (["--device", "tpu"], "write auto, cpu, cuda or cuda:N"),
    ],
)
def test_cli_refuses_settings_that_would_give_a_wrong_or_empty_corpus(
    micro_run, prepared, tmp_path, capsys, extra, message
):
    argv = ["--expert", str(micro_run / "step40"), "--method", "ancestral", *SMALL, *extra]
    argv += ["--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(tmp_path / "out")]
    assert message in refusal(argv, capsys)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


@pytest.fixture
def weightless_expert(micro_run, tmp_path) -> str:
    """The micro GOOD without weights: a refusal with it proves no model load was tried."""
    expert = tmp_path / "expert"
    shutil.copytree(micro_run / "step40", expert, ignore=shutil.ignore_patterns("*.safetensors"))
    return str(expert)


def test_bad_prompts_and_outputs_are_refused_before_any_model_is_loaded(weightless_expert, tmp_path, capsys):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Caf\xe9 au lait\n".encode("latin-1") * 20)
    base = ["--expert", weightless_expert, "--method", "ancestral", *SMALL]
    out = ["--out", str(tmp_path / "out")]
    assert "prompt file not found" in refusal([*base, "--prompts", str(tmp_path / "none.txt"), *out], capsys)
    assert "not UTF-8 text" in refusal([*base, "--prompts", str(latin), *out], capsys)
    few = tmp_path / "few.txt"
    few.write_text("only one prompt\n")
    assert "need 10 prompts" in refusal([*base, "--prompts", str(few), *out], capsys)
    assert not (tmp_path / "out").exists()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a prompt line\n" * 10)
    (tmp_path / "a_file").write_text("not a directory")
    for bad in (tmp_path / "a_file", tmp_path / "a_file" / "corpus"):
        message = refusal([*base, "--prompts", str(prompts), "--out", str(bad)], capsys)
        assert f"--out {bad}:" in message


def test_a_reused_out_holds_only_the_new_corpus(micro_run, prepared, tmp_path):
    out = tmp_path / "corpus"
    base = ["generate", "--expert", str(micro_run / "step40"), "--method", "ancestral", *SMALL]
    base += ["--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(out)]
    cli_main([*base, "--shards", "2"])
    cli_main([*base, "--shards", "1", "--seed", "1"])
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "job.json",
        "manifest.json",
        "shard-00000.arrow",
        "stats.json",
    ]
    assert read_json(out / "manifest.json")["params"]["seed"] == 1


def test_stats_describes_a_corpus_made_elsewhere_from_its_text(tmp_path, capsys):
    """A directory of .arrow files with only `text`: word statistics, no token ones, no card."""
    corpus = tmp_path / "elsewhere"
    corpus.mkdir()
    lines = ["the cat sat on the mat and the cat sat on the mat again", "a dog ran far away from home"]
    write_arrow(pa.table({"text": lines}), corpus / "part-0.arrow")
    cli_main(["stats", str(corpus)])
    stats = read_json(corpus / "stats.json")
    assert stats["samples"] == 2 and stats["distinct_tokens"] is None
    words = " ".join(lines).split()
    assert stats["distinct_words"]["1"] == pytest.approx(len(set(words)) / len(words), abs=1e-6)
    assert not (corpus / "README.md").exists()
    assert "2 samples" in capsys.readouterr().out
    assert "not a directory" in refusal_of(["stats", str(tmp_path / "none")], capsys)


def refusal_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_token_counts_take_suffixes_and_all():
    from argparse import ArgumentTypeError

    from cdsynth.synth.cli import token_count

    counts = [token_count(text) for text in ("5000", "250k", "1.5M", "all")]
    assert counts == [5000, 250_000, 1_500_000, "all"]
    with pytest.raises(ArgumentTypeError, match="must be positive"):
        token_count("0")
