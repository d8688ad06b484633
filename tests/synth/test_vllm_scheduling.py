"""vLLM's scheduling settings per device, without vLLM: `max_num_seqs`, CUDA graphs and the CPU-only
environment (tests/synth/test_vllm_backend.py checks them on a live CPU engine)."""

from __future__ import annotations

import os

import pytest
import torch

from cdsynth.spec.synthesis import Scoring
from cdsynth.synth import vllm_backend
from cdsynth.synth.vllm_backend import (
    CPU_AUTO_ROWS,
    CPU_ENVIRONMENT,
    CUDA_MAX_NUM_SEQS,
    VllmEngine,
    apply_cpu_environment,
    scheduling,
)


def test_on_cpu_the_protocol_batch_sets_max_num_seqs_and_the_engine_runs_eagerly():
    assert scheduling(False, 32, None, {}) == {"max_num_seqs": 32, "enforce_eager": True}
    assert scheduling(False, "auto", None, {})["max_num_seqs"] == CPU_AUTO_ROWS
    assert scheduling(False, 32, None, {"CDSYNTH_VLLM_CUDA_GRAPHS": "1"})["enforce_eager"] is False


@pytest.mark.parametrize("batch_size", [16, 256, 4096, "auto"])
def test_on_cuda_max_num_seqs_does_not_follow_the_torch_batch_and_graphs_are_on(batch_size):
    assert scheduling(True, batch_size, None, {}) == {
        "max_num_seqs": CUDA_MAX_NUM_SEQS,
        "enforce_eager": False,
    }


def test_the_argument_then_the_variable_override_the_defaults():
    environ = {"CDSYNTH_VLLM_MAX_NUM_SEQS": "512", "CDSYNTH_VLLM_CUDA_GRAPHS": "0"}
    assert scheduling(True, 256, None, environ) == {"max_num_seqs": 512, "enforce_eager": True}
    assert scheduling(True, 256, 2048, environ)["max_num_seqs"] == 2048
    assert scheduling(False, 32, None, environ)["max_num_seqs"] == 512


def test_cpu_variables_leave_the_users_own_alone():
    environ = {"VLLM_CPU_OMP_THREADS_BIND": "0-1"}
    chosen = apply_cpu_environment(environ)
    assert environ["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    assert chosen == {k: v for k, v in CPU_ENVIRONMENT.items() if k != "VLLM_CPU_OMP_THREADS_BIND"}
    assert environ.items() >= chosen.items()


class Stop(Exception):
    """Raised where vLLM would be imported, to end the constructor there."""


def stop() -> None:
    raise Stop


@pytest.mark.parametrize("on_gpu", [False, True])
def test_the_cpu_variables_are_set_on_cpu_only_and_before_vllm_loads(monkeypatch, tmp_path, on_gpu):
    for name in CPU_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: on_gpu)
    monkeypatch.setattr(vllm_backend, "require_vllm", stop)
    with pytest.raises(Stop):
        VllmEngine(tmp_path, None, Scoring(method="ancestral"), max_len=64, batch_size=8)
    assert all((name in os.environ) != on_gpu for name in CPU_ENVIRONMENT)
