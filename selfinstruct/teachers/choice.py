"""Which backend a teacher section means: the union of every backend's config class, chosen by
``kind``, and how an unset kind is chosen and a stage's teacher laid over the default one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from selfinstruct.teachers import BACKENDS
from selfinstruct.teachers.base import TeacherSettings

#: the teacher backends' kinds (``teacher.kind``), from the registry in selfinstruct.teachers
TEACHER_KINDS: tuple[str, ...] = tuple(BACKENDS)

#: one backend's config, chosen by ``kind``: OpenAIConfig, OpenAIBatchConfig, LocalConfig or
#: VllmConfig (every class registered in ``selfinstruct.teachers.BACKENDS``)
TeacherConfig = Annotated[
    Union[tuple(backend.config for backend in BACKENDS.values())],  # noqa: UP007
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[TeacherSettings] = TypeAdapter(TeacherConfig)

#: environment variables that fill a teacher field when it is unset and the backend has it
ENVIRONMENT_FIELDS = (("OPENAI_BASE_URL", "base_url"), ("OPENAI_API_KEY", "api_key"))

def resolve_teacher(
    own: Mapping[str, Any],
    inherited: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A teacher section's fields, ready for validation as a :data:`TeacherConfig`.

    ``own`` is laid over ``inherited`` (a stage's teacher over the default one); unset fields
    the backend has are filled from ``environ`` (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``).
    ``kind`` unset means ``openai`` when a base URL or an API key is configured, else
    ``local``. Inherited fields the chosen backend does not have are dropped (a stage may
    switch kind); its own such fields are kept, so validation names them. ``kind: null`` and
    ``api: null`` (older manifests) mean unset.
    """
    own = {k: v for k, v in own.items() if not (k in ("kind", "api") and v is None)}
    inherited = {k: v for k, v in (inherited or {}).items() if k not in ("kind", "api") or v}
    data = inherited | own
    kind = data.get("kind")
    backend = BACKENDS.get(kind) if isinstance(kind, str) else None
    for variable, field in ENVIRONMENT_FIELDS:
        value = (environ or {}).get(variable)
        if value and not data.get(field) and (kind is None or field in _fields(backend)):
            data[field] = value
    if kind is None:
        kind = "openai" if data.get("base_url") or data.get("api_key") is not None else "local"
        backend = BACKENDS[kind]
    if backend is not None:
        accepted = _fields(backend)
        data = {k: v for k, v in data.items() if k in own or k in accepted}
    data["kind"] = kind
    return data


def _fields(backend: Any) -> set[str]:
    return set(backend.config.model_fields) if backend is not None else set()


def teacher_fields(value: Any) -> Any:
    """A teacher section as a plain mapping of the fields that were set."""
    if isinstance(value, TeacherSettings):
        return value.model_dump(exclude_unset=True) | {"kind": value.kind}
    return dict(value) if isinstance(value, Mapping) else value


def parse_teacher_config(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> TeacherSettings:
    """Validate one teacher section (kind chosen as in :func:`resolve_teacher`); raises
    pydantic's ValidationError (wrap with :func:`selfinstruct.config.config_error`)."""
    return _ADAPTER.validate_python(resolve_teacher(data, environ=environ))
