"""The explicit package list in pyproject.toml (needed for the models/ -> video2gs.model_cards
mapping) must name every sub-package, or a non-editable install would miss modules."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is in the standard library from Python 3.11")
def test_every_subpackage_is_listed():
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "video2gs").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"
    assert cfg["package-dir"]["video2gs.model_cards"] == "models"
    assert any((REPO / "models").glob("*.json"))
