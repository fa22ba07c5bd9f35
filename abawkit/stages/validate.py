"""``abaw validate``: check a submission against the test videos and frame counts.

Reads the submission (file, or folder for the abaw3 edition) and the expected frames from a template
file or the prep workspace. Prints every problem as ``file:line: message``; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from abawkit import formats
from abawkit import submission as sub
from abawkit.console import console
from abawkit.labels import task
from abawkit.scoring import expected_frames

MAX_SHOWN = 200


def run(path: Path, track: str, workdir: Path, template: Path | None = None, edition: str = "abaw5") -> int:
    """Returns the number of problems (0 = valid)."""
    spec = task(track)
    fmt = formats.get(spec, edition)
    expected = expected_frames(workdir, spec, template, edition)
    problems = fmt.validate(path, spec, expected)
    for p in problems[:MAX_SHOWN]:
        console.print(p, soft_wrap=True, markup=False)
    if len(problems) > MAX_SHOWN:
        console.print(f"... and {len(problems) - MAX_SHOWN} more")
    if problems:
        console.print(f"[red]INVALID[/] {path}: {len(problems)} problem(s)")
    else:
        console.print(f"[green]OK[/] {path}: {sub.summary(spec, expected)}")
    return len(problems)
