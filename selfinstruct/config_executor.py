"""The ``executor:`` section of a run's config: where the per-instruction work runs.

``local`` (the default) runs everything in one process. ``ray`` keeps stage 1 and every file
write on the driver and runs each kept instruction's job (stages 2-3 and the instance
filters) on Ray: with the ``http`` engine on Ray actors that each keep many requests in
flight to OpenAI-compatible endpoints, with the ``vllm`` engine through Ray Data LLM's vLLM
engine processor on the cluster's accelerators.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from selfinstruct.config_sections import Section


class RayVLLMConfig(Section):
    """The ``vllm`` engine: Ray Data LLM's ``vLLMEngineProcessorConfig``, one engine replica
    per ``concurrency`` (each on one GPU, or on a tensor/pipeline-parallel group of them)."""

    model_source: str = Field(default="", description="HF model id or local checkpoint directory.")
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="vLLM engine arguments, e.g. {tensor_parallel_size: 2, max_model_len: 4096}.",
    )
    concurrency: int = Field(default=1, ge=1, description="Engine replicas.")
    batch_size: int = Field(default=64, ge=1, description="Rows per batch sent to an engine.")
    accelerator_type: str | None = Field(
        default=None, description="Ray accelerator type to place engines on, e.g. H100."
    )
    placement_bundles: list[dict[str, float]] | None = Field(
        default=None,
        description="Placement-group bundles per replica, e.g. [{CPU: 1}] for vLLM's CPU build.",
    )
    stage_cpus: float = Field(
        default=0.25, gt=0, description="CPUs per pre/post-processing and chat-template worker."
    )
    max_rows: int = Field(
        default=4096, ge=1, description="Most requests gathered into one Ray Data run."
    )
    flush_s: float = Field(
        default=2.0, gt=0, description="Seconds requests are gathered before a Ray Data run."
    )


class ExecutorConfig(Section):
    """Where each kept instruction's work runs (stage 1 and all writes stay on the driver)."""

    kind: Literal["local", "ray"] = Field(
        default="local", description="Where jobs run, local (this process) or ray (Ray actors)."
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster: 'auto' or 'HOST:PORT'; unset starts a local Ray.",
    )
    engine: Literal["http", "vllm"] = Field(
        default="http",
        description="With ray, http (actors calling the endpoints) or vllm (Ray Data LLM).",
    )
    workers: int = Field(default=2, ge=1, description="Ray actors running jobs (http engine).")
    worker_cpus: float = Field(
        default=0.25,
        gt=0,
        description="CPUs Ray reserves per actor (they mostly wait on the network: keep it low).",
    )
    start_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds Ray may take to place and build the workers."
    )
    max_job_attempts: int = Field(
        default=4, ge=1, description="Times a job lost with its worker or node is sent again."
    )
    object_store_mb: int = Field(
        default=200, ge=50, description="Object store of a Ray started locally (no ray_address)."
    )
    vllm: RayVLLMConfig = Field(default_factory=RayVLLMConfig, description="The vllm engine.")
