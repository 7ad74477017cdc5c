"""Stage-2/3 filters over the instances of ONE instruction (Self-Instruct's post-processing).

Per instance, in this order: ``empty_output``, ``placeholder_output``,
``input_equals_output``, ``ends_with_colon``. Then, over the instances that passed:
``conflicting_outputs`` (one non-empty input, several different outputs: all of them go,
since no one can tell which is right) and ``duplicate_instance`` (a repeated
``(input, output)`` pair: the first stays). Inputs and outputs are compared stripped.
"""

from __future__ import annotations

from selfinstruct.config_sections import FilterConfig
from selfinstruct.filters.base import Drop
from selfinstruct.records import Instance

__all__ = ["filter_instances", "instance_drop"]

_COLONS = (":", "：")


def _is_placeholder(output: str, placeholders: set[str]) -> bool:
    """``"N/A."`` or ``"None"`` when ``n/a``/``none`` are placeholders (case-insensitive)."""
    value = output.strip().lower()
    return value in placeholders or value.rstrip(".").strip() in placeholders


def instance_drop(instance: Instance, config: FilterConfig) -> Drop | None:
    """The first per-instance rule that drops ``instance``, or ``None`` to keep it."""
    source, target = instance.input.strip(), instance.output.strip()
    if not target:
        return Drop("empty_output")
    placeholders = {value.strip().lower() for value in config.placeholder_outputs}
    if _is_placeholder(target, placeholders):
        return Drop("placeholder_output", {"output": target})
    if source and source == target:
        return Drop("input_equals_output")
    for field, value in (("input", source), ("output", target)):
        if value.endswith(_COLONS):
            return Drop("ends_with_colon", {"field": field})
    return None


def filter_instances(
    instances: list[Instance], config: FilterConfig
) -> tuple[list[Instance], list[tuple[Instance, Drop]]]:
    """Kept instances in order, and each dropped one with its :class:`Drop` (also in order)."""
    drops: dict[int, Drop] = {}
    for position, instance in enumerate(instances):
        drop = instance_drop(instance, config)
        if drop is not None:
            drops[position] = drop

    outputs: dict[str, list[str]] = {}  # input -> distinct outputs, in order of appearance
    for position, instance in enumerate(instances):
        source = instance.input.strip()
        if position in drops or not source:
            continue
        seen = outputs.setdefault(source, [])
        if instance.output.strip() not in seen:
            seen.append(instance.output.strip())
    for position, instance in enumerate(instances):
        source = instance.input.strip()
        if position not in drops and len(outputs.get(source, ())) > 1:
            drops[position] = Drop(
                "conflicting_outputs", {"input": source, "outputs": outputs[source]}
            )

    first: dict[tuple[str, str], int] = {}
    for position, instance in enumerate(instances):
        if position in drops:
            continue
        key = (instance.input.strip(), instance.output.strip())
        if key in first:
            drops[position] = Drop("duplicate_instance", {"duplicate_of": first[key]})
        else:
            first[key] = position

    kept = [instance for position, instance in enumerate(instances) if position not in drops]
    dropped = [(instances[position], drops[position]) for position in sorted(drops)]
    return kept, dropped
