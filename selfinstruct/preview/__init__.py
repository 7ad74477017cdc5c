"""``selfinstruct preview``: check a run's config, seeds, prompts and prices and show one
request of every stage, with no teacher call (:mod:`.offline`, :mod:`.show`); ``--live`` also
asks the endpoint for its models and runs one instruction through every stage (:mod:`.live`).
Nothing is written to a run directory."""

from __future__ import annotations

from selfinstruct.preview.offline import Preview, StagePreview, TeacherLine, preview_config
from selfinstruct.preview.show import preview_text

__all__ = ["Preview", "StagePreview", "TeacherLine", "preview_config", "preview_text"]
