"""The trainer on real (small) data: loss falls, checkpoints load, a killed run resumes bit for bit."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MICRO, kill_and_resume, micro_settings, weights
from transformers import AutoModelForCausalLM, AutoTokenizer

from cdsynth.data.shards import load_documents
from cdsynth.data.tokenizer import load_tokenizer
from cdsynth.errors import ConfigError
from cdsynth.resumable import WorkDir, work_path
from cdsynth.spec.schedule import Checkpoints
from cdsynth.spec.training import TrainSettings
from cdsynth.train.models import build_model
from cdsynth.train.packing import MixedBatches, PackedStream
from cdsynth.train.trainer import (
    chunked_lm_loss,
    lr_factor,
    next_token_loss,
    save_state,
    train,
    validation_blocks,
)


def micro_config(**overrides) -> TrainSettings:
    values = dict(
        seed=7,
        steps=60,
        batch_size=8,
        micro_batch_size=4,
        lr=3e-3,
        warmup_steps=5,
        checkpoints={"every": 20},
        eval_blocks=32,
    )
    return micro_settings(**(values | overrides))


def run(cfg: TrainSettings, prepared: dict[str, Path], out: Path) -> list[dict]:
    return train(cfg, prepared["train"], prepared["test"], prepared["tokenizer"], out)


def test_schedule_warms_up_then_decays_to_floor():
    cfg = micro_config(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(s, cfg) for s in range(cfg.steps)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    assert lr_factor(cfg.steps, cfg) == pytest.approx(0.1)


def test_warmup_from_zero_is_the_hugging_face_cosine_schedule():
    """The authors' schedule: `get_cosine_schedule_with_warmup`, whose first update has lr 0."""
    from transformers import get_cosine_schedule_with_warmup

    cfg = micro_config(steps=200, warmup_steps=15, min_lr_ratio=0.0, warmup_from_zero=True)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, cfg.warmup_steps, cfg.steps)
    theirs = []
    for _ in range(cfg.steps):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert [lr_factor(s, cfg) for s in range(cfg.steps)] == pytest.approx(theirs, abs=1e-12)
    assert theirs[0] == 0 and lr_factor(0, micro_config(warmup_steps=15)) == pytest.approx(1 / 15)


def test_checkpoint_steps_include_the_last():
    assert Checkpoints(every=30).fixed_steps(100) == [30, 60, 90, 100]
    assert (
        Checkpoints(every=500).fixed_steps(8000)[-1] == 8000
        and len(Checkpoints(every=500).fixed_steps(8000)) == 16
    )
    assert Checkpoints(babylm=True).fixed_steps(100) == [100]


@pytest.fixture(scope="module")
def model_and_ids(prepared):
    """A tiny random LLaMA and 4 real blocks of 32 token ids from the test shards."""
    cfg = micro_config(eval_blocks=4)
    blocks = validation_blocks(cfg, prepared["test"], prepared["tokenizer"])
    model = build_model(MICRO, load_tokenizer(prepared["tokenizer"]), seed=1)
    return model, torch.from_numpy(blocks).long()


def loss_and_grads(model, loss_fn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("chunk", [1, 7, 32, 4096])
def test_chunked_loss_equals_the_hugging_face_loss_and_its_gradients(model_and_ids, chunk):
    """Chunks of any size, across rows of the batch, give HF's shifted mean loss and the same gradients."""
    model, ids = model_and_ids
    reference, reference_grads = loss_and_grads(model, lambda: model(input_ids=ids, labels=ids).loss)

    def chunked():
        hidden = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
        return chunked_lm_loss(hidden, model.get_output_embeddings(), ids, chunk=chunk)

    loss, grads = loss_and_grads(model, chunked)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for ours, theirs in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # validation's path: no checkpointing, the same value
        assert next_token_loss(model, ids).item() == pytest.approx(reference.item(), rel=1e-6)


def test_chunked_loss_keeps_no_logits_for_backward(model_and_ids):
    """Autograd holds no vocabulary-wide tensor of a loss in several chunks; HF's loss holds the batch's."""
    model, ids = model_and_ids
    vocab = model.config.vocab_size

    def saved_logits(loss_fn) -> int:
        sizes = []

        def pack(tensor):
            if tensor.dim() and tensor.shape[-1] == vocab:
                sizes.append(tensor.numel())
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss_fn()
        return sum(sizes)

    assert saved_logits(lambda: model(input_ids=ids, labels=ids).loss) >= ids.numel() * vocab

    def several_chunks():
        hidden = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
        return chunked_lm_loss(hidden, model.get_output_embeddings(), ids, chunk=ids.numel() // 4)

    assert saved_logits(several_chunks) == 0


def test_no_kv_cache_leaves_the_loss_unchanged(model_and_ids):
    model, ids = model_and_ids
    with torch.no_grad():
        cached = model(input_ids=ids, labels=ids)
        uncached = model(input_ids=ids, labels=ids, use_cache=False)
    assert cached.past_key_values is not None and uncached.past_key_values is None
    assert torch.equal(cached.loss, uncached.loss)


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
    cfg = micro_config(steps=400, checkpoints={"every": 10})
    reference = run(cfg, prepared, tmp_path / "reference")
    paths = {
        "train_shards": str(prepared["train"]),
        "valid_shards": str(prepared["test"]),
        "tokenizer_dir": str(prepared["tokenizer"]),
    }
    out = kill_and_resume(cfg, paths, tmp_path)
    assert weights(out) == weights(tmp_path / "reference")
    assert len(weights(out)) == len(cfg.checkpoints.fixed_steps(cfg.steps))
    with open(out / "metrics.csv", newline="") as handle:
        assert [r["val_loss"] for r in reference] == [
            float(row["val_loss"]) for row in csv.DictReader(handle)
        ]


def test_a_state_saved_by_other_settings_is_discarded(prepared, tmp_path, capsys):
    stale = WorkDir(tmp_path / "run", {"run": "another config"}).open()
    save_state(stale / "state.pt", {"step": 10})
    history = run(micro_config(steps=4, checkpoints={"every": 2}), prepared, tmp_path / "run")
    assert [row["step"] for row in history] == [2, 4], "trained from step 0"
    assert "discarding" in capsys.readouterr().err and not stale.exists()


def test_training_into_a_directory_of_other_files_is_refused(prepared, tmp_path):
    (tmp_path / "notes.txt").write_text("not a training run")
    with pytest.raises(ConfigError, match="not empty and not a training run"):
        run(micro_config(steps=2, checkpoints={"every": 2}), prepared, tmp_path)
    assert (tmp_path / "notes.txt").exists() and not work_path(tmp_path).exists()


def test_two_process_ddp_matches_one_process(prepared, tmp_path):
    """torchrun with two CPU processes (gloo) trains the same model as one process, up to float rounding."""
    cfg = micro_config(steps=20, checkpoints={"every": 10}, micro_batch_size=2)
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
    with open(tmp_path / "ddp" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for ours, theirs in zip(single, rows, strict=True):
        assert float(theirs["train_loss"]) == pytest.approx(ours["train_loss"], rel=1e-4)
        assert float(theirs["val_loss"]) == pytest.approx(ours["val_loss"], rel=1e-4)
        assert int(theirs["words_real"]) == ours["words_real"], "the words of the global batch, not a rank's"
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "single" / "step20").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "ddp" / "step20").state_dict()
    # Adam divides a rarely seen token's tiny embedding gradient by a tiny sqrt(v): the all-reduce's other
    # summation order then shows in a few such rows as up to ~4e-5 (weights ~0.1); everything else is 1e-6.
    assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a)


# A one-layer model of 16 dimensions: ~110K tokens/s on one core, so a run sees 2M words in ~30 s.
NANO = {"layers": 1, "hidden": 16, "heads": 1, "intermediate": 32, "max_positions": 64}


def words_after_each_step(cfg: TrainSettings, prepared) -> np.ndarray:
    """Words seen after each step, counted independently of the trainer's count: each token of the batches
    the run trains on carries its document's words / tokens."""
    documents = load_documents(prepared["train"])
    stream = PackedStream(documents, cfg.block_size, (cfg.seed,), cfg.packing)
    batches = MixedBatches(stream, None, cfg.batch_size, cfg.micro_batch_size)
    document_of = np.repeat(np.arange(len(documents.words)), np.diff(documents.starts))
    per_token = (documents.words / np.diff(documents.starts))[document_of]
    words = [0.0]
    for step in range(cfg.steps):
        taken = batches.real.token_indices(step * cfg.batch_size, cfg.batch_size)
        words.append(words[-1] + per_token[taken].sum())
    return np.array(words)


@pytest.mark.slow
def test_the_babylm_schedule_saves_exactly_the_marks_reached_and_resumes_after_kill(prepared, tmp_path):
    cfg = micro_settings(
        seed=1,
        arch=NANO,
        block_size=64,
        steps=1000,
        batch_size=64,
        micro_batch_size=64,
        lr=3e-3,
        warmup_steps=5,
        eval_blocks=4,
        checkpoints={"babylm": True},
    )
    words = words_after_each_step(cfg, prepared)
    assert 2e6 < words[-1] < 3e6, "the run should pass 1M and 2M words"
    marks = {int(np.argmax(words >= m * 1e6)): f"chck_{m}M" for m in (1, 2)}
    paths = {key: str(prepared[name]) for key, name in [("train_shards", "train"), ("valid_shards", "test"),
                                                         ("tokenizer_dir", "tokenizer")]}  # fmt: skip
    out = kill_and_resume(cfg, paths, tmp_path)  # killed after its first save: the 1M mark
    with open(out / "metrics.csv", newline="") as handle:
        saved = {int(row["step"]): row for row in csv.DictReader(handle)}
    assert sorted(saved) == sorted([*marks, cfg.steps])
    for step, row in saved.items():
        info = json.loads((out / f"step{step}/checkpoint.json").read_text())
        assert info["mark"] == marks.get(step)
        assert info["words_real"] == int(row["words_real"]) == round(words[step]) == info["words"]
        assert info["tokens"] == step * cfg.batch_size * cfg.block_size and info["words_synthetic"] == 0
