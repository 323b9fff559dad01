"""The shape DESIGN.md promises: pipeline/ knows nothing of Slack; only store.py speaks SQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [p for d in ("pipeline", "bot") for p in (ROOT / d).rglob("*.py")]
SQL = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|SELECT\s.+\sFROM|PRAGMA)\b",
                 re.IGNORECASE | re.DOTALL)


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_product_files_exist():
    assert len(PRODUCT) > 10


def test_pipeline_never_imports_slack():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.joinpath("pipeline").rglob("*.py")
                 if any(name.split(".")[0] in ("slack_bolt", "slack_sdk", "bot") for name in imports(p))]
    assert offenders == []


def test_only_the_store_touches_sqlite_or_writes_sql():
    offenders = []
    for path in PRODUCT:
        if path == ROOT / "pipeline" / "store.py":
            continue
        if {"sqlite3", "aiosqlite"} & {n.split(".")[0] for n in imports(path)}:
            offenders.append(f"{path.relative_to(ROOT)} imports sqlite")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} has SQL")
    assert offenders == []


def test_the_sql_detector_sees_sql():
    assert SQL.search("UPDATE signals SET status=? WHERE id=?") and SQL.search("select x from y")
    assert not SQL.search("select the best market from the list of offers".replace("from", "frm"))
