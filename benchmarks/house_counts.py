"""The house in numbers: how abawkit's package is put together, for any checkout.

    python benchmarks/house_counts.py                 # this tree
    python benchmarks/house_counts.py /path/to/tree   # another checkout (e.g. a `git worktree` of an older commit)
    python benchmarks/house_counts.py --list          # also name every file, edge and place counted

Reads the ``abawkit/`` sources of the tree (parses them; imports nothing of them) and prints one table:
files over 400 lines; import cycles (module-level imports only, then counting imports inside functions
too); abawkit imports that sit inside functions; stage-to-stage imports; workspace path f-strings
outside ``workspace/layout.py``; and the number of files each shared rule is written in (nearest-frame
fill, ``_left``/``_right`` halves, device resolution, autocast, folder walking), plus the calls that
re-resolve a task name. ``tests/test_house.py`` asserts the same facts with these functions.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINES = 400
LAYOUT = "abawkit/workspace/layout.py"

# An f-string that spells a workspace folder: f"tmf/{task}/fold{f}", f"features/{name}", ...
WORKSPACE_DIRS = ("prep", "pretrain", "finetune", "features", "tmf", "ensemble", "smooth", "predict", "submissions",
                  "submit", "validate", "run", "demo", "report")
FSTRING_RE = re.compile(r"""\bf(["'])(?:%s)/""" % "|".join(WORKSPACE_DIRS))

# Where a rule is *implemented* (a caller of the one implementation does not match).
RULES: dict[str, re.Pattern] = {
    # the nearest-frame choice: compare the distances to the frames on either side, or pandas' ffill/bfill
    "nearest-frame fill": re.compile(r"np\.abs\([^\n]*\)\s*<=\s*np\.abs\(|\.ffill\(\)"),
    # a name's half of the frame: "_left" / "_right" spelled in code
    "_left/_right halves": re.compile(r"""endswith\(\s*["']_(?:left|right)|["']_\(left\|right\)|\}_left["']"""),
    # a device name turned into a device
    "device resolution": re.compile(r"""cuda\.device_count\(\)|torch\.device\(\s*["']cuda|["']cuda["']\s+if\s+torch\.cuda"""),
    "autocast": re.compile(r"torch\.autocast\("),
    # a recursive folder walk
    # which entries of a folder count (hidden names, links, dangling links): the listing cache keeps its own
    # order of visit (it skips folders that did not change) but reads entries through files.visible_entries
    "folder walking": re.compile(r"os\.walk\(|\.rglob\(|dangling symbolic link"),
}
TASK_CALL_RE = re.compile(r"(?<![\w.])(?:task|task_spec|spec)\((?:task_name|cfg\.task|track|t|name|meta\[|expect_task|\"\w+\")")


@dataclass
class Module:
    name: str  # abawkit.stages.tmf
    path: Path
    rel: str  # abawkit/stages/tmf.py
    lines: int
    top: set[str] = field(default_factory=set)  # abawkit modules imported at module level
    inner: set[str] = field(default_factory=set)  # ... inside functions (or TYPE_CHECKING blocks)
    n_top: int = 0  # import statements of abawkit modules at module level
    n_inner: int = 0


def modules(tree: Path) -> dict[str, Module]:
    """Every ``abawkit`` module of ``tree`` with its internal imports split by where they sit."""
    out: dict[str, Module] = {}
    files = sorted((tree / "abawkit").rglob("*.py"))
    names = {_modname(tree, f) for f in files}
    for f in files:
        rel = f.relative_to(tree).as_posix()
        text = f.read_text()
        m = Module(_modname(tree, f), f, rel, text.count("\n") + (not text.endswith("\n") and bool(text)))
        _collect(ast.parse(text), m, names, top=True)
        out[m.name] = m
    return out


def _modname(tree: Path, f: Path) -> str:
    parts = list(f.relative_to(tree).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, names: set[str]) -> set[str]:
    """abawkit modules an import statement loads (``from abawkit import x`` -> abawkit.x when a module)."""
    got = set()
    if isinstance(node, ast.Import):
        got = {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        got = {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {g for g in got if g in names and g != "abawkit"}


def _collect(node: ast.AST, m: Module, names: set[str], top: bool) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            t = _targets(child, names)
            if t:
                (m.top if top else m.inner).update(t)
                if top:
                    m.n_top += 1
                else:
                    m.n_inner += 1
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            _collect(child, m, names, top=False)
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            _collect(child, m, names, top=False)  # never runs: not a module-level import
        else:
            _collect(child, m, names, top)


def cycles(mods: dict[str, Module], inner: bool = False) -> list[list[str]]:
    """Import cycles (strongly connected groups of two or more modules), module-level edges only unless ``inner``."""
    graph = {n: sorted((m.top | m.inner) if inner else m.top) for n, m in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan, recursive (the graph is ~150 modules)
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def stage_imports(mods: dict[str, Module]) -> list[tuple[str, str]]:
    """(importer, imported) pairs of two different stage modules, at any level."""
    st = "abawkit.stages."
    return sorted((n, t) for n, m in mods.items() if n.startswith(st)
                  for t in m.top | m.inner if t.startswith(st) and t != n)


def long_files(mods: dict[str, Module]) -> list[tuple[str, int]]:
    return sorted(((m.rel, m.lines) for m in mods.values() if m.lines > MAX_LINES), key=lambda x: -x[1])


def _code(text: str) -> str:
    """Source without comments and docstrings (so prose that mentions a rule does not count)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def path_fstrings(mods: dict[str, Module]) -> list[tuple[str, int, str]]:
    """(file, line, text) of every workspace path f-string outside ``workspace/layout.py``."""
    out = []
    for m in mods.values():
        if m.rel == LAYOUT:
            continue
        for i, line in enumerate(m.path.read_text().splitlines(), 1):
            if FSTRING_RE.search(line.split("#")[0]):
                out.append((m.rel, i, line.strip()))
    return out


def rule_places(mods: dict[str, Module]) -> dict[str, list[str]]:
    """{rule: files whose code implements it}."""
    code = {m.rel: _code(m.path.read_text()) for m in mods.values()}
    return {rule: sorted(f for f, c in code.items() if rx.search(c)) for rule, rx in RULES.items()}


def task_calls(mods: dict[str, Module]) -> list[tuple[str, int]]:
    """(file, calls) of ``labels.task(<a name>)`` look-ups: each re-resolves a task name travelling as a string."""
    out = []
    for m in mods.values():
        n = len(TASK_CALL_RE.findall(_code(m.path.read_text())))
        if n and m.rel != "abawkit/labels.py":
            out.append((m.rel, n))
    return sorted(out)


def counts(tree: Path) -> dict[str, object]:
    mods = modules(tree)
    tc = task_calls(mods)
    return {
        "files over 400 lines": long_files(mods),
        "import cycles (module level)": cycles(mods),
        "import cycles (with imports in functions)": cycles(mods, inner=True),
        "abawkit imports inside functions": (sum(m.n_inner for m in mods.values()),
                                             sum(m.n_inner + m.n_top for m in mods.values())),
        "stage-to-stage imports": stage_imports(mods),
        "workspace path f-strings outside layout": path_fstrings(mods),
        **{f"places: {k}": v for k, v in rule_places(mods).items()},
        "task look-ups (calls / files)": (sum(n for _, n in tc), tc),
    }


def _number(v: object) -> str:
    if isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], int):
        return f"{v[0]} of {v[1]}"
    if isinstance(v, tuple):
        return f"{v[0]} in {len(v[1])} files"
    return str(len(v))  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tree", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    ap.add_argument("--list", action="store_true", help="name what was counted")
    args = ap.parse_args(argv)
    c = counts(Path(args.tree))
    width = max(map(len, c))
    print(f"house of {args.tree}")
    for k, v in c.items():
        print(f"  {k:<{width}}  {_number(v)}")
        if args.list:
            items = v[1] if isinstance(v, tuple) and not isinstance(v[0], int) or (isinstance(v, tuple) and isinstance(v[1], list)) else v
            for item in items if isinstance(items, list) else []:
                print(f"  {'':<{width}}    {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
