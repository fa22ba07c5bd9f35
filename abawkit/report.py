"""Render a workspace report: metrics tables, per-class bars, prediction timelines (matplotlib).

Pure rendering: callers pass data in (``stages/report.py`` gathers it from the workspace).
Writes PNG files and one self-contained HTML page (images embedded as base64) plus Markdown.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abawkit.io import atomic_path, write_text


@dataclass
class Timeline:
    """One video's prediction vs label for one output column, before and after smoothing."""

    title: str
    frames: np.ndarray  # [T] 1-based frame index
    label: np.ndarray  # [T], NaN where not annotated
    raw: np.ndarray  # [T]
    smoothed: np.ndarray  # [T]


@dataclass
class Report:
    title: str
    tables: list[tuple[str, list[str], list[list[object]]]] = field(default_factory=list)  # (title, cols, rows)
    images: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def bar_chart(path: Path, title: str, per_class: dict[str, float], ylabel: str) -> Path:
    """Per-class metric bars with the mean as a dashed line."""
    plt = _pyplot()
    names, values = list(per_class), [float(v) for v in per_class.values()]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(names) + 1.5), 3.0))
    ax.bar(names, values, color="#4C72B0")
    ax.axhline(float(np.mean(values)), color="k", ls="--", lw=1, label=f"mean {np.mean(values):.3f}")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_ylim(min(0.0, min(values)), max(1.0, max(values)))
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def timeline_chart(path: Path, lines: list[Timeline]) -> Path:
    """Stacked per-video timelines: label, raw prediction and smoothed prediction."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(lines), 1, figsize=(9, 1.9 * len(lines)), squeeze=False)
    for ax, tl in zip(axes[:, 0], lines):
        ax.plot(tl.frames, tl.raw, color="#BBBBBB", lw=0.8, label="raw")
        ax.plot(tl.frames, tl.smoothed, color="#C44E52", lw=1.4, label="smoothed")
        ax.plot(tl.frames, tl.label, color="k", lw=1.2, label="label")
        ax.set_title(tl.title, fontsize=9)
        ax.legend(loc="upper right", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return _save(fig, path)


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def render(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` (images embedded) and ``report.md`` (images linked) in ``out_dir``."""
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(report.title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>",
             f"<h1>{html.escape(report.title)}</h1>"]
    md = [f"# {report.title}", ""]
    for title, cols, rows in report.tables:
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows]
        parts.append("</table>")
        md += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
        md.append("")
    for caption, png in report.images:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(f"<h3>{html.escape(caption)}</h3><img src='data:image/png;base64,{data}'/>")
        md += [f"### {caption}", "", f"![{caption}]({Path(png).name})", ""]
    parts.append("</body></html>")
    return write_text(out_dir / "report.html", "\n".join(parts)), write_text(out_dir / "report.md", "\n".join(md))
