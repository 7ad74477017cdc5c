"""Where each kept instruction's job runs: in the driver's process (``local``) or on Ray.

Stage 1 and every write to the run directory stay in the driver (:mod:`selfinstruct.pipeline`);
an executor only turns a kept :class:`~selfinstruct.records.Instruction` into its finished job
(:meth:`Executor.expand`), recording the teacher calls behind it through the context's
``record_call``. ``make_executor`` picks one from the ``executor:`` config section; Ray is
imported only when a Ray executor is chosen.
"""

from __future__ import annotations

from selfinstruct.executors.base import Executor, ExecutorContext
from selfinstruct.executors.local import LocalExecutor

__all__ = ["Executor", "ExecutorContext", "LocalExecutor", "make_executor"]


def make_executor(context: ExecutorContext) -> Executor:
    """The executor the run's ``executor:`` section asks for."""
    settings = context.config.executor
    if settings.kind == "local":
        return LocalExecutor(context)
    if settings.engine == "vllm":
        from selfinstruct.executors.ray_vllm import RayVLLMExecutor

        return RayVLLMExecutor(context)
    from selfinstruct.executors.ray_http import RayHttpExecutor

    return RayHttpExecutor(context)
