"""``selfinstruct mix``: runs and datasets into one training mixture, with caps per source,
temperature-scaled shares, task-type quotas and cross-source ROUGE-L dedup, seeded; written in
any export layout, with a manifest of the proportions achieved.

:mod:`.sources` reads the sources, :mod:`.plan` does the arithmetic of shares and quotas,
:mod:`.core` selects, writes and reports.
"""

from __future__ import annotations

from selfinstruct.mix.core import GROUPINGS, MixOptions, MixResult, SourceReport, mix
from selfinstruct.mix.plan import Plan, apportion, plan_mixture, shares
from selfinstruct.mix.sources import Source, SourceSpec, load_source, parse_source

__all__ = [
    "GROUPINGS", "MixOptions", "MixResult", "Plan", "Source", "SourceReport", "SourceSpec",
    "apportion", "load_source", "mix", "parse_source", "plan_mixture", "shares",
]  # fmt: skip
