"""A copy of a shipped recipe at a tiny size, for tests that run `abaw demo` end to end in a subprocess."""

from __future__ import annotations

import shutil
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def tiny_recipe(name: str, dest: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """``recipes/<name>`` copied to ``dest`` with each ``(old, new)`` text edit made in its file; an edit whose
    ``old`` text is gone fails loudly, so a recipe change cannot silently leave the test at full size."""
    shutil.copytree(RECIPES / name, dest)
    for file, pairs in edits.items():
        text = (dest / file).read_text()
        for old, new in pairs:
            assert old in text, (name, file, old)
            text = text.replace(old, new)
        (dest / file).write_text(text)
    return dest
