"""bench/gpu_window.py on a CPU: every phase runs in its own subprocess and writes a result, and the
modules its phases need import nothing the GPU machine lacks (it has torch and transformers only)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench/gpu_window.py"
NEEDED = (
    "gpu_window, engine_before, cdsynth.synth.engine, cdsynth.synth.scoring, cdsynth.train.models, "
    "cdsynth.eval.lm_scoring, cdsynth.eval.items"
)
ABSENT_THERE = {"datasets", "snakemake", "jsonschema", "matplotlib", "pyarrow", "pandas"}


def phase_names() -> list[str]:
    spec = importlib.util.spec_from_file_location("gpu_window", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)  # constants only: the phases import torch inside
    return [phase.name for phase in module.PHASES]


def test_the_phases_import_only_torch_and_transformers():
    code = (
        f"import sys; sys.path[:0] = [{str(REPO / 'bench')!r}, {str(REPO / 'src')!r}]; import {NEEDED}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {ABSENT_THERE!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


@pytest.mark.slow  # a minute of compiling and timing on CPU
def test_the_smoke_run_writes_a_result_for_every_phase(tmp_path):
    out = tmp_path / "gpu_window.jsonl"
    command = ["nice", "-n", "19", sys.executable, str(SCRIPT), "--smoke", "--out", str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=7200)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r for r in records if "error" in r] == []
    for name in phase_names():
        mine = [r for r in records if r["phase"] == name]
        assert [r["status"] for r in mine if "status" in r] == ["ok"], name
        assert any("status" not in r for r in mine), f"{name} wrote no result"
    assert "=== summary ===" in result.stdout
