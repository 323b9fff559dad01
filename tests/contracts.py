"""Validate payloads against Kalshi's pinned OpenAPI spec (tests/data/kalshi-openapi.yaml, v3.13.0)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).parent / "data" / "kalshi-openapi.yaml"
_URN = "urn:kalshi-openapi"


@lru_cache(maxsize=1)
def kalshi_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(_URN, Resource.from_contents(kalshi_spec(), default_specification=DRAFT4))


def schema(name: str) -> dict[str, Any]:
    return kalshi_spec()["components"]["schemas"][name]


def kalshi_errors(instance: Any, schema_name: str) -> list[str]:
    """Every way `instance` breaks the named component schema (empty when it conforms)."""
    validator = OAS30Validator({"$ref": f"{_URN}#/components/schemas/{schema_name}"}, registry=_registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(instance)]


def unknown_fields(instance: dict[str, Any], schema_name: str) -> set[str]:
    """Fields the spec does not describe (it does not forbid them, but our fakes should not invent any)."""
    return set(instance) - set(schema(schema_name).get("properties", {}))
