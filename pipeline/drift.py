"""Venue answers checked against the pinned contracts: pure, no I/O (pipeline/probe.py asks the venues).

Kalshi's contract is its own OpenAPI spec, pinned (contracts/kalshi-openapi.yaml, v3.31.0); Polymarket
publishes none, so contracts/polymarket.json pins what this desk reads, from its docs and official clients.
A drift is what would break the desk: a field it needs that is missing or has changed type (a renamed field
shows as missing), a value its enums do not know, an endpoint that answers 410 or no longer exists. A field
the contract does not describe is only a note: venues add fields all the time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT202012

KALSHI_URN = "urn:oddsdesk:kalshi-openapi"
POLYMARKET_URN = "urn:oddsdesk:polymarket"
KALSHI_SPEC_VERSION = "3.31.0"
POLYMARKET_CONTRACT_DATE = "2026-12-02"


@dataclass(frozen=True)
class Finding:
    venue: str
    call: str  # "GET /markets"
    severity: Literal["drift", "note", "ok", "fail"]
    text: str

    def line(self) -> str:
        label = {"drift": "DRIFT", "note": "note", "ok": "ok", "fail": "FAIL"}[self.severity]
        return f"{self.venue:<10} {label:<5}  {self.call}: {self.text}"


@cache
def _kalshi_spec() -> dict[str, Any]:
    text = (files("pipeline") / "contracts" / "kalshi-openapi.yaml").read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the spec is 360 KB
    return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way


@cache
def _polymarket_spec() -> dict[str, Any]:
    return json.loads((files("pipeline") / "contracts" / "polymarket.json").read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    return Registry().with_resources([
        (KALSHI_URN, Resource.from_contents(_kalshi_spec(), default_specification=DRAFT4)),
        (POLYMARKET_URN, Resource.from_contents(_polymarket_spec(), default_specification=DRAFT202012)),
    ])


@cache
def _kalshi_nullable() -> frozenset[str]:
    """Properties the Kalshi spec marks `nullable` beside a bare `allOf` (EventFeeChange.fee_type_override): OpenAPI
    3.0 validators ignore `nullable` there, so the null the spec describes would read as drift. It is not."""
    schemas = _kalshi_spec()["components"]["schemas"]
    return frozenset(name for schema in schemas.values() for name, sub in (schema.get("properties") or {}).items()
                     if isinstance(sub, dict) and sub.get("nullable") and "allOf" in sub)


def _schema(venue: str, name: str) -> dict[str, Any]:
    if venue == "kalshi":
        return _kalshi_spec()["components"]["schemas"][name]
    return _polymarket_spec()["$defs"][name]


def _resolve(venue: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref (and allOf of one $ref) followed, for walking properties."""
    while True:
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf") or []) == 1 and "properties" not in schema:
            ref = schema["allOf"][0].get("$ref")
        if ref is None:
            return schema
        schema = _schema(venue, ref.rsplit("/", 1)[-1])


def _pattern(path: Iterable[Any]) -> str:
    """markets/3/status -> markets[*].status: one line per kind of problem, not per market."""
    text = ""
    for part in path:
        text += "[*]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the answer)"


def _describe(error: ValidationError) -> tuple[str, str]:
    where = _pattern(error.absolute_path)
    if error.validator == "required":
        name = re.search(r"'([^']+)' is a required property", error.message)
        field = name.group(1) if name else "?"
        return f"{where}.{field}" if where != "(the answer)" else field, "missing (the pinned contract requires it)"
    if error.validator == "enum":
        return where, f"{error.instance!r} is a value the pinned contract does not know ({error.validator_value})"
    if error.validator in ("type", "pattern", "format", "anyOf", "const"):
        shown = repr(error.instance)[:60]
        return where, f"{shown} does not have the contract's form ({error.validator}: {error.validator_value})"[:240]
    return where, error.message[:240]


def _unknown_fields(venue: str, schema: dict[str, Any], payload: Any, path: tuple[Any, ...],
                    found: set[str]) -> None:
    schema = _resolve(venue, schema)
    if isinstance(payload, dict) and "properties" in schema:
        known = schema["properties"]
        for name, value in payload.items():
            if name not in known:
                found.add(_pattern((*path, name)))
            else:
                _unknown_fields(venue, known[name], value, (*path, name), found)
    elif isinstance(payload, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(payload):
            _unknown_fields(venue, schema["items"], item, (*path, index), found)


def check(venue: str, call: str, payload: Any, schema_name: str) -> list[Finding]:
    """Every way `payload` departs from the pinned schema `schema_name`, one finding per kind of problem."""
    if venue == "kalshi":
        validator: Any = OAS30Validator({"$ref": f"{KALSHI_URN}#/components/schemas/{schema_name}"},
                                        registry=_registry())
    else:
        validator = Draft202012Validator({"$ref": f"{POLYMARKET_URN}#/$defs/{schema_name}"}, registry=_registry())
    drifts: dict[tuple[str, str], int] = {}
    for error in validator.iter_errors(payload):
        path = list(error.absolute_path)
        if (venue == "kalshi" and error.instance is None and path and isinstance(path[-1], str)
                and path[-1] in _kalshi_nullable()):
            continue
        key = _describe(error)
        drifts[key] = drifts.get(key, 0) + 1
    findings = [Finding(venue, call, "drift", f"{where}: {text}" + (f" ({n} times)" if n > 1 else ""))
                for (where, text), n in drifts.items()]
    new: set[str] = set()
    _unknown_fields(venue, _schema(venue, schema_name), payload, (), new)
    findings += [Finding(venue, call, "note", f"{field}: a field the pinned contract does not describe")
                 for field in sorted(new)]
    return findings


def gone(status: int, body: str) -> str:
    """An endpoint the desk uses answered that it is not there any more: the drift's text."""
    what = "retired (410)" if status == 410 else f"not found ({status})"
    return f"{what}: {body[:200]}"
