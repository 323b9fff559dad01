from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pipeline.config import Settings, load_settings
from pipeline.store import Store


def make_settings(tmp_path: Any = None, **sections: dict[str, Any]) -> Settings:
    """Settings from defaults plus per-section overrides, with no config file and no environment."""
    import json

    path = (tmp_path / "config.json") if tmp_path is not None else None
    if path is None:
        import tempfile
        from pathlib import Path

        path = Path(tempfile.mkdtemp()) / "config.json"
    path.write_text(json.dumps(sections, default=str))
    return load_settings(path, environ={})


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "desk.db")
    try:
        yield s
    finally:
        await s.close()
