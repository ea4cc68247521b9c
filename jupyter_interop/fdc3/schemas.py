"""FINOS's FDC3 2.2 JSON schemas and validation of contexts against them (docs/FDC3.md).

The schemas are not kept in the repository: ``scripts/build-fdc3-schemas.sh`` copies them from
the npm packages ``@finos/fdc3-context`` and ``@finos/fdc3-schema`` (pinned by
``fdc3-schemas/package-lock.json``) into ``schemas/`` beside this module, which the wheel ships.
Each context type maps to the schema whose ``type`` is that constant, read from the schemas
themselves; a type of no standard schema (an app's own, ``"myorg.thing"``) is checked against
the base ``context.schema.json``. Validation follows each schema's ``$schema`` (draft 7).

One reading differs from the files, in memory only: ``oneOf`` is checked as ``anyOf``. In the
2.2.0 schemas every ``oneOf`` either lists alternatives that their ``type`` constants already
keep apart, or overlapping ones that the standard means as "at least one of": a
``fdc3.timeRange`` with both ``startTime`` and ``endTime``, or a ``fdc3.interaction`` whose
``interactionType`` is ``"Meeting"`` (both the listed value and "any string"), matches several
alternatives and so fails a strict ``oneOf``, although the standard's own examples are such
contexts (docs/FDC3.md, "Validation"; ``tests/unit/test_fdc3_context.py`` shows the files
refuse them).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ..client.errors import MalformedContext

__all__ = [
    "SCHEMA_DIR",
    "ContextSchemas",
    "SchemasNotBuilt",
    "context_schemas",
    "validate_context",
]

#: where scripts/build-fdc3-schemas.sh puts the schemas
SCHEMA_DIR = Path(__file__).resolve().with_name("schemas")
#: the namespace FDC3 reserves for its standard types
STANDARD_PREFIX = "fdc3."
_BASE_SCHEMA = "context.schema.json"


class SchemasNotBuilt(FileNotFoundError):
    """The FDC3 schemas were not copied next to the package (a checkout without the build)."""


@dataclass(frozen=True)
class ContextSchemas:
    """The loaded schemas: one validator per standard context type, and the base one."""

    #: context type (``"fdc3.instrument"``) -> validator of its schema
    by_type: dict[str, Draft7Validator]
    #: the validator of ``context.schema.json``, for types of no standard schema
    base: Draft7Validator
    #: the npm packages the files came from (``SOURCE.json``: name, version, license)
    source: list[dict[str, Any]]

    def validator_for(self, context_type: str) -> Draft7Validator:
        return self.by_type.get(context_type, self.base)


def _one_of_as_any_of(node: Any) -> Any:
    """The schema with every ``oneOf`` keyword read as ``anyOf`` (see the module docstring)."""
    if isinstance(node, dict):
        return {
            ("anyOf" if key == "oneOf" else key): _one_of_as_any_of(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_one_of_as_any_of(item) for item in node]
    return node


def _type_constant(schema: dict[str, Any]) -> str | None:
    """The ``type`` constant a context schema declares (in its first ``allOf`` part)."""
    for part in schema.get("allOf", ()):
        const = part.get("properties", {}).get("type", {}).get("const")
        if isinstance(const, str):
            return const
    return None


@functools.cache
def context_schemas(directory: Path = SCHEMA_DIR) -> ContextSchemas:
    """Load every schema under ``directory`` once; :class:`SchemasNotBuilt` when absent."""
    source_file = directory / "SOURCE.json"
    if not source_file.is_file():
        raise SchemasNotBuilt(
            f"The FDC3 schemas are not in {directory}: run `bash scripts/build-fdc3-schemas.sh` "
            "(it copies them from FINOS's npm packages; scripts/setup.sh runs it)."
        )
    documents = [
        _one_of_as_any_of(json.loads(path.read_text()))
        for path in sorted(directory.glob("*/*.schema.json"))
    ]
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents
    )
    by_type: dict[str, Draft7Validator] = {}
    base: Draft7Validator | None = None
    for doc in documents:
        validator = Draft7Validator(
            doc, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER
        )
        if doc["$id"].endswith("/context/" + _BASE_SCHEMA):
            base = validator
        context_type = _type_constant(doc)
        if context_type is not None:
            by_type[context_type] = validator
    if base is None:
        raise SchemasNotBuilt(f"{directory} has no context/{_BASE_SCHEMA}: rebuild it")
    source = json.loads(source_file.read_text())["packages"]
    return ContextSchemas(by_type=by_type, base=base, source=source)


def _pointer(parts: Any) -> str:
    return "/" + "/".join(str(part) for part in parts)


def _malformed(context_type: str, error: ValidationError) -> MalformedContext:
    where = _pointer(error.absolute_path)
    schema_path = _pointer(error.absolute_schema_path)
    return MalformedContext(
        f"Malformed {context_type} context at {where}: {error.message} (schema rule {schema_path})",
        schema_path=schema_path,
        path=where,
    )


def validate_context(context: Any) -> dict[str, Any]:
    """``context`` itself when it is valid against its type's FDC3 schema, else
    :class:`MalformedContext` naming the failing part and schema rule.

    A type in the ``fdc3.`` namespace must be one of the standard's; any other type is checked
    against the base context schema (a ``type`` string, an optional ``name`` and ``id``).
    """
    if not isinstance(context, dict):
        raise MalformedContext(
            f"An FDC3 context is a dict with a 'type', not {type(context).__name__}",
            schema_path="/type",
            path="/",
        )
    context_type = context.get("type")
    if not isinstance(context_type, str) or not context_type:
        raise MalformedContext(
            f"An FDC3 context needs a non-empty string 'type', not {context_type!r}",
            schema_path="/definitions/BaseContext/required",
            path="/type",
        )
    schemas = context_schemas()
    if context_type.startswith(STANDARD_PREFIX) and context_type not in schemas.by_type:
        raise MalformedContext(
            f"{context_type!r} is not a standard FDC3 2.2 context type (the 'fdc3.' namespace "
            "is the standard's; name your own type 'yourorg.thing')",
            schema_path="/properties/type",
            path="/type",
        )
    error = best_match(schemas.validator_for(context_type).iter_errors(context))
    if error is not None:
        raise _malformed(context_type, error)
    return context
