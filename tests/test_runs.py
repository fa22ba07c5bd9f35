"""Run directories: atomic writes, manifest, skip-if-done, --force, resume, cleanup on user error."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from abawkit.errors import AbawError
from abawkit.runs import Interrupted, StageDone, atomic_path, load_stage, read_json, sha256_file, stage, write_json


@dataclass(frozen=True)
class C:
    seed: int = 0
    lr: float = 0.1


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1}


def test_stage_manifest_and_skip(tmp_path):
    src = tmp_path / "input.bin"
    src.write_bytes(b"abc")
    with stage(tmp_path, "prep", C(), seed=0) as run:
        run.add_input("release", src)
        run.add_output("table.txt").write_text("rows")
        run.metrics["n"] = 3
        assert run.dir.name == "prep.partial"
    man = load_stage(tmp_path, "prep")
    assert man["status"] == "done" and man["metrics"] == {"n": 3}
    assert man["inputs"]["release"]["sha256"] == sha256_file(src)
    assert man["outputs"]["table.txt"] == sha256_file(tmp_path / "prep" / "table.txt")
    assert not (tmp_path / "prep.partial").exists()
    with pytest.raises(StageDone):
        with stage(tmp_path, "prep", C()):
            pass
    with pytest.raises(AbawError, match="another config"):
        with stage(tmp_path, "prep", C(lr=0.2)):
            pass
    with stage(tmp_path, "prep", C(lr=0.2), force=True) as run:
        run.add_output("table.txt").write_text("new")
    assert (tmp_path / "prep" / "table.txt").read_text() == "new"


def test_user_error_removes_partial_crash_keeps_it(tmp_path):
    with pytest.raises(AbawError):
        with stage(tmp_path, "a", C()) as run:
            run.path("x").write_text("1")
            raise AbawError("bad input")
    assert not (tmp_path / "a.partial").exists() and not (tmp_path / "a").exists()
    with pytest.raises(Interrupted, match="run the same command again to resume") as stop:
        with stage(tmp_path, "b/fold1", C()) as run:
            run.path("ckpt.pt").write_text("step 5")
            raise KeyboardInterrupt
    assert stop.value.code == 130
    assert (tmp_path / "b" / "fold1.partial" / "ckpt.pt").exists()
    with stage(tmp_path, "b/fold1", C()) as run:  # same config: resumes with the checkpoint kept
        assert run.path("ckpt.pt").read_text() == "step 5"
    with pytest.raises(Interrupted):
        with stage(tmp_path, "c", C()) as run:
            run.path("ckpt.pt").write_text("old")
            raise KeyboardInterrupt
    with stage(tmp_path, "c", C(lr=9.0)) as run:  # other config: stale partial is cleared
        assert not run.path("ckpt.pt").exists()


def test_load_stage_hint(tmp_path):
    with pytest.raises(AbawError, match="run `abaw prep` first"):
        load_stage(tmp_path, "prep", hint="abaw prep")


def test_tree_fingerprint_names_all_files_and_sizes_of_non_images(tmp_path):
    from abawkit.runs import sha256_tree

    (tmp_path / "crops" / "v1").mkdir(parents=True)
    (tmp_path / "crops" / "v1" / "00001.jpg").write_bytes(b"a")
    (tmp_path / "ann.txt").write_text("AU1\n1\n")
    base = sha256_tree(tmp_path)
    (tmp_path / "crops" / "v1" / "00001.jpg").write_bytes(b"bb")  # images: names only (no stat per crop)
    assert sha256_tree(tmp_path) == base
    (tmp_path / "ann.txt").write_text("AU1\n1\n0\n")
    changed = sha256_tree(tmp_path)
    assert changed != base
    (tmp_path / "crops" / "v1" / "00002.jpg").write_bytes(b"")
    assert sha256_tree(tmp_path) not in (base, changed)
