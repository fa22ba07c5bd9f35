"""Run directories: atomic writes, manifest, skip-if-done, --force, resume, cleanup on user error."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from abawkit.errors import AbawError
from abawkit.io import atomic_path, read_json, write_json
from abawkit.workspace.fingerprints import sha256_file
from abawkit.workspace.stage import Interrupted, StageDone, load_stage, stage


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


def test_release_listing_sees_sizes_mtimes_and_crop_folders_not_in_place_rewrites(tmp_path):
    import os

    from abawkit.workspace.fingerprints import listing_sha256

    crops = tmp_path / "crops" / "v1"
    crops.mkdir(parents=True)
    (crops / "00001.jpg").write_bytes(b"a")
    ann = tmp_path / "ann.txt"
    ann.write_text("AU1\n1\n")
    base = listing_sha256(tmp_path)
    (crops / "00001.jpg").write_bytes(b"bb")  # rewritten in place, same name: not seen (README says so)
    assert listing_sha256(tmp_path) == base
    st = ann.stat()
    ann.write_text("AU1\n0\n")  # a same-size label edit: its mtime_ns changes
    os.utime(ann, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    edited = listing_sha256(tmp_path)
    assert edited != base
    new = crops / "new.jpg"  # a crop replaced by a rename: its folder's mtime_ns changes
    new.write_bytes(b"c")
    before = os.stat(crops).st_mtime_ns
    os.replace(new, crops / "00001.jpg")
    os.utime(crops, ns=(before + 1_000_000, before + 1_000_000))
    assert listing_sha256(tmp_path) not in (base, edited)


def test_checkpoint_fingerprints_see_content_and_are_cached(tmp_path, monkeypatch):
    import hashlib
    import os

    from abawkit.workspace import fingerprints as runs

    monkeypatch.setenv("ABAW_HASH_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "hubert"
    ckpt.mkdir()
    weights = ckpt / "model.safetensors"
    weights.write_bytes(b"\0" * (runs.CACHE_MIN + 10))
    (ckpt / "config.json").write_text("{}")
    (ckpt / "._model.safetensors").write_bytes(b"mac resource fork")  # hidden: not part of the checkpoint
    first = runs.content_sha256(ckpt)
    st = weights.stat()
    weights.write_bytes(b"\1" * (runs.CACHE_MIN + 10))  # retrained: same architecture, same size
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # (a coarse clock may not tick)
    assert runs.content_sha256(ckpt) != first
    hashed = []  # bytes fed to sha256
    real = hashlib.sha256

    class Counting:
        def __init__(self, data=b""):
            self.h = real(data)

        def update(self, block):
            hashed.append(len(block))
            self.h.update(block)

        def hexdigest(self):
            return self.h.hexdigest()

    monkeypatch.setattr(runs.hashlib, "sha256", Counting)
    other = tmp_path / "mae.pth"
    other.write_bytes(b"\2" * (runs.CACHE_MIN + 10))
    first_time = runs.sha256_file(other)
    assert sum(hashed) > runs.CACHE_MIN
    hashed.clear()
    assert runs.sha256_file(other) == first_time == real(other.read_bytes()).hexdigest()
    assert sum(hashed) == 0  # hashed once: the second read came from the cache
    (ckpt / "._model.safetensors").write_bytes(b"changed")
    assert runs.content_sha256(ckpt) == runs.content_sha256(ckpt)


def test_a_dangling_link_is_an_error_naming_the_link(tmp_path):
    from abawkit.workspace.fingerprints import content_sha256, listing_sha256

    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "v1").symlink_to(tmp_path / "gone")
    for fp in (listing_sha256, content_sha256):
        with pytest.raises(AbawError, match="crops/v1: dangling symbolic link"):
            fp(tmp_path)


def test_a_link_cycle_is_listed_once(tmp_path):
    """A release folder linked back to an ancestor (or to itself twice) is fingerprinted once, not until
    ELOOP (which used to surface as a bogus "dangling symbolic link" ...a/up/a/up/...)."""
    from abawkit.workspace.fingerprints import content_sha256, listing_sha256

    (tmp_path / "rel" / "a").mkdir(parents=True)
    (tmp_path / "rel" / "a" / "x.txt").write_text("1")
    plain = content_sha256(tmp_path / "rel")
    (tmp_path / "rel" / "a" / "up").symlink_to("..")
    (tmp_path / "rel" / "again").symlink_to("a")
    assert content_sha256(tmp_path / "rel") == plain  # the links add no folder: each is entered once
    assert len(listing_sha256(tmp_path / "rel")) == 64  # the folders' mtimes changed, so only: it ends


def test_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    import os

    from abawkit import io as runs

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(runs.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(runs.os, "replace", lambda a, b: events.append("rename") or real_replace(a, b))
    write_json(tmp_path / "manifest.json", {"a": 1})
    assert events == ["fsync", "rename", "fsync"]  # the file, the rename, its folder


def test_a_finished_stage_is_swapped_in_whole_even_if_interrupted(tmp_path, monkeypatch):
    from abawkit.workspace import stage as runs

    with stage(tmp_path, "s", C(lr=0.1)) as run:
        run.add_output("a.txt").write_text("old")
        run.add_output("b.txt").write_text("old")

    def killed_halfway(path, ignore_errors=False):  # SIGTERM after removing one file of the old folder
        next(p for p in sorted(path.iterdir()) if p.suffix == ".txt").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.shutil, "rmtree", killed_halfway)
    with pytest.raises(KeyboardInterrupt):
        with stage(tmp_path, "s", C(lr=0.2), force=True) as run:
            run.add_output("a.txt").write_text("new")
            run.add_output("b.txt").write_text("new")
    monkeypatch.undo()
    man = load_stage(tmp_path, "s")
    assert man["config"]["lr"] == 0.2
    assert all((tmp_path / "s" / f).read_text() == "new" for f in ("a.txt", "b.txt"))
