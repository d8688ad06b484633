"""The trainer on real (small) data: loss falls, checkpoints load, a killed run resumes bit for bit."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from helpers import MICRO_ARCH, kill_and_resume, weights
from transformers import AutoModelForCausalLM, AutoTokenizer

from cdsynth.errors import ConfigError
from cdsynth.resumable import WorkDir, work_path
from cdsynth.spec.schedule import checkpoint_steps
from cdsynth.train.trainer import TrainConfig, lr_factor, save_state, train


def micro_config(**overrides) -> TrainConfig:
    values = dict(
        arch=MICRO_ARCH,
        seed=7,
        block_size=32,
        steps=60,
        batch_size=8,
        micro_batch_size=4,
        lr=3e-3,
        warmup_steps=5,
        save_every=20,
        eval_blocks=32,
        threads=1,
    )
    return TrainConfig(**(values | overrides))


def run(cfg: TrainConfig, prepared: dict[str, Path], out: Path) -> list[dict]:
    return train(cfg, prepared["train"], prepared["test"], prepared["tokenizer"], out)


def test_schedule_warms_up_then_decays_to_floor():
    cfg = micro_config(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, cfg) for s in range(cfg.steps)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert lr_factor(cfg.steps, cfg) == pytest.approx(0.1)


def test_checkpoint_steps_include_the_last():
    assert checkpoint_steps(100, 30) == [30, 60, 90, 100]
    assert checkpoint_steps(8000, 500)[-1] == 8000 and len(checkpoint_steps(8000, 500)) == 16


def test_training_lowers_validation_loss_and_saves_loadable_checkpoints(prepared, tmp_path):
    history = run(micro_config(), prepared, tmp_path / "run")
    assert [row["step"] for row in history] == [20, 40, 60]
    vocab = len(AutoTokenizer.from_pretrained(prepared["tokenizer"]))
    val = [row["val_loss"] for row in history]
    assert val[0] < math.log(vocab) - 0.5, "20 steps already beat a uniform guess"
    assert val == sorted(val, reverse=True) and val[-1] < val[0] - 0.05
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 4
    assert (tmp_path / "run" / "curve.png").stat().st_size > 1000
    assert not work_path(tmp_path / "run").exists()

    step = tmp_path / "run" / "step60"
    model = AutoModelForCausalLM.from_pretrained(step)
    tokenizer = AutoTokenizer.from_pretrained(step)
    ids = tokenizer("Once upon a time there was a little dog.", return_tensors="pt").input_ids
    assert ids[0, 0].item() == tokenizer.bos_token_id
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert loss < math.log(vocab)
    assert json.loads((step / "checkpoint.json").read_text())["step"] == 60


def test_killed_run_resumes_to_bitwise_identical_weights(prepared, tmp_path):
    cfg = micro_config(steps=400, save_every=10)
    reference = run(cfg, prepared, tmp_path / "reference")
    paths = {
        "train_shards": str(prepared["train"]),
        "valid_shards": str(prepared["test"]),
        "tokenizer_dir": str(prepared["tokenizer"]),
    }
    out = kill_and_resume(cfg, paths, tmp_path)
    assert weights(out) == weights(tmp_path / "reference")
    assert len(weights(out)) == len(checkpoint_steps(cfg.steps, cfg.save_every))
    assert [r["val_loss"] for r in reference] == [
        float(line.split(",")[3]) for line in (out / "metrics.csv").read_text().splitlines()[1:]
    ]


def test_a_state_saved_by_other_settings_is_discarded(prepared, tmp_path, capsys):
    stale = WorkDir(tmp_path / "run", {"run": "another config"}).open()
    save_state(stale / "state.pt", {"step": 10})
    history = run(micro_config(steps=4, save_every=2), prepared, tmp_path / "run")
    assert [row["step"] for row in history] == [2, 4], "trained from step 0"
    assert "discarding" in capsys.readouterr().err and not stale.exists()


def test_training_into_a_directory_of_other_files_is_refused(prepared, tmp_path):
    (tmp_path / "notes.txt").write_text("not a training run")
    with pytest.raises(ConfigError, match="not empty and not a training run"):
        run(micro_config(steps=2, save_every=2), prepared, tmp_path)
    assert (tmp_path / "notes.txt").exists() and not work_path(tmp_path).exists()


def test_two_process_ddp_matches_one_process(prepared, tmp_path):
    """torchrun with two CPU processes (gloo) trains the same model as one process, up to float rounding."""
    cfg = micro_config(steps=20, save_every=10, micro_batch_size=2)
    single = run(cfg, prepared, tmp_path / "single")
    spec = tmp_path / "spec.json"
    paths = {
        "train_shards": str(prepared["train"]),
        "valid_shards": str(prepared["test"]),
        "tokenizer_dir": str(prepared["tokenizer"]),
        "out_dir": str(tmp_path / "ddp"),
    }
    spec.write_text(json.dumps({"config": asdict(cfg), **paths}))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "cdsynth.train.launch",
        "--spec",
        str(spec),
    ]
    subprocess.run(command, check=True, capture_output=True)
    rows = (tmp_path / "ddp" / "metrics.csv").read_text().splitlines()[1:]
    for ours, theirs in zip(single, rows, strict=True):
        fields = theirs.split(",")
        assert float(fields[2]) == pytest.approx(ours["train_loss"], rel=1e-4)
        assert float(fields[3]) == pytest.approx(ours["val_loss"], rel=1e-4)
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "single" / "step20").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "ddp" / "step20").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
