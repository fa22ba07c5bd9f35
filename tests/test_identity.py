"""The one identity rule (``workspace.identity``), the stage lifecycle on it (``workspace.stage``), the listing
cache (``workspace.listing``) and the plan's states (``run.plan``): each kind of input change is detected and
named, nothing unchanged reads changed, a ``.partial`` resumes only under its identity, an older workspace is
migrated with one line, and paths are recorded resolved."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from abawkit.errors import AbawError
from abawkit.run import plan as pl
from abawkit.workspace import identity as ident
from abawkit.workspace import listing as listing_mod
from abawkit.workspace.stage import StageDone, stage


@dataclass(frozen=True)
class C:
    lr: float = 0.1


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("ABAW_HASH_CACHE", str(tmp_path / "cache" / "sha256"))
    monkeypatch.setenv("ABAW_LISTING_CACHE", str(tmp_path / "cache" / "listings"))


def age(root: Path, seconds: float = 60) -> None:
    """Move every mtime under ``root`` into the past (out of the caches' racy window), as an old release's."""
    t = time.time() - seconds
    for dirpath, dirs, files in os.walk(root):
        for n in files:
            os.utime(os.path.join(dirpath, n), (t, t))
        os.utime(dirpath, (t, t))


def release(root: Path) -> Path:
    for v in ("v1", "v2"):
        d = root / "cropped_aligned" / v
        d.mkdir(parents=True)
        for i in range(1, 4):
            (d / f"{i:05d}.jpg").write_bytes(b"")
    labels = root / "VA_Estimation_Challenge" / "Train_Set"
    labels.mkdir(parents=True)
    (labels / "v1.txt").write_text("valence,arousal\n0.1,0.2\n0.3,0.4\n")
    (labels / "v2.txt").write_text("valence,arousal\n0.5,0.6\n")
    age(root)
    return root


def run_prep(ws: Path, rel: Path, cfg: C = C(), **kw) -> None:
    with stage(ws, "prep", cfg, inputs={"release": ident.data(rel)}, **kw) as run:
        run.add_output("frames.txt").write_text("rows")


def test_identity_is_equal_for_equal_parts_and_differs_for_each_part():
    base = ident.identity("tmf", 1, "abc", {"prep": "1" * 64})
    assert base == ident.identity("tmf", 1, "abc", {"prep": {"id": "1" * 64, "path": "elsewhere"}})
    others = [ident.identity("finetune", 1, "abc", {"prep": "1" * 64}), ident.identity("tmf", 2, "abc", {"prep": "1" * 64}),
              ident.identity("tmf", 1, "abd", {"prep": "1" * 64}), ident.identity("tmf", 1, "abc", {"prep": "2" * 64}),
              ident.identity("tmf", 1, "abc", {"prep": "1" * 64, "x": "1" * 64})]
    assert base not in others and len(set(others)) == len(others)


def test_listing_names_each_label_change_and_ignores_a_copy(tmp_path):
    rel = release(tmp_path / "rel")
    first = ident.resolve(tmp_path / "ws", "release", ident.data(rel))
    assert ident.changes(tmp_path / "ws", {"inputs": {"release": first}}) == []
    copy = shutil.copytree(rel, tmp_path / "copy")  # other mtimes and inodes, same content
    assert listing_mod.listing(copy).id == first["id"]
    lab = rel / "VA_Estimation_Challenge" / "Train_Set"
    (lab / "v1.txt").write_text("valence,arousal\n0.1,0.2\n0.3,0.9\n")  # same size, one value corrected
    (lab / "v3.txt").write_text("valence,arousal\n")
    (lab / "v2.txt").unlink()
    lines = ident.changes(tmp_path / "ws", {"inputs": {"release": first}})
    assert lines == ["labels changed: VA_Estimation_Challenge/Train_Set/v1.txt",
                     "labels added: VA_Estimation_Challenge/Train_Set/v3.txt",
                     "labels removed: VA_Estimation_Challenge/Train_Set/v2.txt"]


def test_listing_sees_crops_added_and_a_label_rewritten_within_the_cache(tmp_path):
    rel = release(tmp_path / "rel")
    base = listing_mod.listing(rel)
    assert listing_mod.listing(rel) == base  # warm
    (rel / "cropped_aligned" / "v2" / "00004.jpg").write_bytes(b"")
    rec = {"path": str(rel), "kind": "listing", "id": base.id, "files": base.files}
    assert ident.changes(tmp_path, {"inputs": {"release": rec}}) == [f"input changed: {rel} (release)"]
    lab = rel / "VA_Estimation_Challenge" / "Train_Set" / "v2.txt"
    age(rel)
    listing_mod.listing(rel)  # cached with the folder's and the file's old stats
    lab.write_text("valence,arousal\n0.5,0.7\n")  # in place: the folder's mtime does not change
    now = listing_mod.listing(rel)
    assert now.files["VA_Estimation_Challenge/Train_Set/v2.txt"] != base.files["VA_Estimation_Challenge/Train_Set/v2.txt"]


def test_warm_listing_lists_no_folder(tmp_path, monkeypatch):
    rel = release(tmp_path / "rel")
    cold = listing_mod.listing(rel)
    scanned = []
    real = os.scandir
    monkeypatch.setattr(listing_mod.os, "scandir", lambda p: scanned.append(p) or real(p))
    assert listing_mod.listing(rel) == cold and scanned == []
    (rel / "cropped_aligned" / "v1" / "00009.jpg").write_bytes(b"")
    assert listing_mod.listing(rel) != cold and scanned == [str(rel / "cropped_aligned" / "v1")]


def test_checkpoint_file_and_folder_changes_are_named(tmp_path):
    ws = tmp_path / "ws"
    ckpt = ws / "checkpoints" / "hubert"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights-1")
    enc = tmp_path / "encoder.pt"
    enc.write_bytes(b"enc-1")
    recs = ident.resolve_all(ws, {"checkpoint": ident.checkpoint(ckpt), "encoder": ident.checkpoint(enc)})
    assert recs["checkpoint"]["kind"] == "folder" and recs["encoder"]["kind"] == "file"
    assert ident.changes(ws, {"inputs": recs}) == []
    (ckpt / "model.safetensors").write_bytes(b"weights-2")  # retrained in place, same names
    enc.write_bytes(b"enc-2")
    assert ident.changes(ws, {"inputs": recs}) == ["input changed: checkpoints/hubert (checkpoint)",
                                                   f"input changed: {enc} (encoder)"]
    enc.unlink()
    assert ident.changes(ws, {"inputs": recs})[-1] == f"input missing: {enc} (encoder)"


def test_paths_are_recorded_resolved(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "ck").mkdir(parents=True)
    (ws / "ck" / "a.pt").write_bytes(b"a")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "encoder.pt").write_bytes(b"b")
    monkeypatch.chdir(other)
    recs = ident.resolve_all(ws, {"inside": ident.file(ws / "ck" / "a.pt"), "typed": ident.file("encoder.pt")})
    assert recs["inside"]["path"] == "ck/a.pt"  # relative to the workspace: a copy checks its own
    assert recs["typed"]["path"] == str(other / "encoder.pt")  # a relative path typed here: absolute
    monkeypatch.chdir(tmp_path)
    assert ident.changes(ws, {"inputs": recs}) == []
    copy = shutil.copytree(ws, tmp_path / "copy")
    (copy / "ck" / "a.pt").write_bytes(b"changed in the copy only")
    assert ident.changes(copy, {"inputs": recs}) == ["input changed: ck/a.pt (inside)"]
    assert ident.changes(ws, {"inputs": recs}) == []


def test_stage_is_done_until_an_input_changes_then_redone_with_one_line(tmp_path, capsys):
    ws, rel = tmp_path / "ws", release(tmp_path / "rel")
    run_prep(ws, rel)
    man = json.loads((ws / "prep" / "manifest.json").read_text())
    assert len(man["identity"]) == 64 and man["inputs"]["release"]["kind"] == "listing"
    with pytest.raises(StageDone):
        run_prep(ws, rel)
    (rel / "VA_Estimation_Challenge" / "Train_Set" / "v2.txt").write_text("valence,arousal\n0.5,0.9\n")
    capsys.readouterr()
    run_prep(ws, rel)  # not StageDone: redone
    out = capsys.readouterr().out
    assert "prep: labels changed: VA_Estimation_Challenge/Train_Set/v2.txt; redoing it" in " ".join(out.split())
    assert json.loads((ws / "prep" / "manifest.json").read_text())["identity"] != man["identity"]
    with pytest.raises(StageDone):
        run_prep(ws, rel)
    with pytest.raises(AbawError, match="another config"):  # a changed config still needs --force
        run_prep(ws, rel, C(lr=0.2))


def test_upstream_redone_is_named_and_redoes_the_stage(tmp_path, capsys):
    ws, rel = tmp_path / "ws", release(tmp_path / "rel")
    run_prep(ws, rel)
    with stage(ws, "finetune/va/fold0", C(), inputs={"prep": ident.upstream("prep")}):
        pass
    man = json.loads((ws / "finetune/va/fold0/manifest.json").read_text())
    assert man["inputs"]["prep"]["id"] == json.loads((ws / "prep/manifest.json").read_text())["identity"]
    (rel / "cropped_aligned" / "v3").mkdir()
    run_prep(ws, rel)
    assert ident.changes(ws, man) == ["input redone: prep"]
    capsys.readouterr()
    with stage(ws, "finetune/va/fold0", C(), inputs={"prep": ident.upstream("prep")}):
        pass
    assert "finetune/va/fold0: input redone: prep; redoing it" in capsys.readouterr().out


def test_partial_resumes_only_under_its_identity(tmp_path, capsys):
    ws, rel = tmp_path / "ws", release(tmp_path / "rel")
    with pytest.raises(RuntimeError):
        with stage(ws, "prep", C(), inputs={"release": ident.data(rel)}) as run:
            run.path("last.pt").write_text("epoch 3")
            raise RuntimeError("crash")
    assert json.loads((ws / "prep.partial/config.json").read_text())["identity"]
    with pytest.raises(RuntimeError):  # same inputs: resumed, the checkpoint kept
        with stage(ws, "prep", C(), inputs={"release": ident.data(rel)}) as run:
            assert (run.dir / "last.pt").read_text() == "epoch 3"
            raise RuntimeError("crash again")
    (rel / "VA_Estimation_Challenge" / "Train_Set" / "v1.txt").write_text("valence,arousal\n")
    capsys.readouterr()
    with stage(ws, "prep", C(), inputs={"release": ident.data(rel)}) as run:
        assert not (run.dir / "last.pt").exists()
    assert "prep: inputs changed since the interrupted run; starting over" in capsys.readouterr().out


def _old_workspace(tmp_path: Path) -> tuple[Path, Path, list[pl.Job]]:
    """Two finished stages as the previous main wrote them: manifests without identity, old input records."""
    ws, rel = tmp_path / "ws", release(tmp_path / "rel")
    run_prep(ws, rel)
    with stage(ws, "tmf/va/fold0", C(), inputs={"prep": ident.upstream("prep")}):
        pass
    for name, inputs in (("prep", {"release": {"path": str(rel), "listing_sha256": "x"}}),
                         ("tmf/va/fold0", {"frames": {"path": str(ws / "prep" / "manifest.json"), "sha256": "y"}})):
        path = ws / name / "manifest.json"
        man = json.loads(path.read_text())
        for k in ("identity", "kind", "version", "declared"):
            man.pop(k)
        man["inputs"] = inputs
        path.write_text(json.dumps(man))
    jobs = [pl.Job("prep", "prep", ("py", "prep"), (), "prep/manifest.json"),
            pl.Job("tmf/va/fold0", "tmf", ("py", "tmf"), ("prep",), "tmf/va/fold0/manifest.json")]
    pl.write_record(ws, {j.id: {"state": "done", "rc": 0, **pl.identity(j)} for j in jobs})
    return ws, rel, jobs


def test_an_older_workspace_is_migrated_once_with_one_line(tmp_path, capsys):
    ws, rel, jobs = _old_workspace(tmp_path)
    capsys.readouterr()
    states = pl.states(ws, jobs)
    out = capsys.readouterr().out
    assert f"migrated {ws}: recorded identities for 2 outputs" in " ".join(out.split())
    assert states == {"prep": "done", "tmf/va/fold0": "done"}
    tmf = json.loads((ws / "tmf/va/fold0/manifest.json").read_text())
    assert tmf["migrated"] and tmf["inputs"]["prep"]["kind"] == "stage"
    assert pl.states(ws, jobs) == states and "migrated" not in capsys.readouterr().out  # once
    with pytest.raises(StageDone):  # by hand: its own declaration recorded quietly, still done
        run_prep(ws, rel)
    (rel / "VA_Estimation_Challenge" / "Train_Set" / "v1.txt").write_text("valence,arousal\n0.9,0.9\n0.9,0.9\n")
    st = pl.assess(ws, jobs)
    assert st["prep"] == pl.State("stale", "labels changed: VA_Estimation_Challenge/Train_Set/v1.txt")
    assert st["tmf/va/fold0"].state == "stale"


def test_a_stage_run_by_hand_migrates_its_own_output_and_its_upstream(tmp_path, capsys):
    ws, rel, _ = _old_workspace(tmp_path)
    capsys.readouterr()
    with pytest.raises(StageDone):  # tmf declares prep: prep is migrated first, then tmf
        with stage(ws, "tmf/va/fold0", C(), inputs={"prep": ident.upstream("prep")}):
            pass
    out = " ".join(capsys.readouterr().out.split())
    assert out.count(f"migrated {ws}: recorded identities for 1 outputs") == 2, out
    prep = json.loads((ws / "prep/manifest.json").read_text())
    tmf = json.loads((ws / "tmf/va/fold0/manifest.json").read_text())
    assert tmf["inputs"]["prep"]["id"] == prep["identity"]
    with pytest.raises(StageDone):
        run_prep(ws, rel)
    assert "migrated" not in capsys.readouterr().out


def test_plan_reason_is_the_first_change(tmp_path):
    ws = tmp_path / "ws"
    ckpt = tmp_path / "hubert"
    ckpt.mkdir()
    (ckpt / "w.bin").write_bytes(b"1")
    with stage(ws, "features/hubert", C(), inputs={"checkpoint": ident.checkpoint(ckpt)}):
        pass
    job = pl.Job("features/hubert", "extract", ("py", "extract"), (), "features/hubert/manifest.json")
    pl.write_record(ws, {job.id: {"state": "done", "rc": 0, **pl.identity(job)}})
    assert pl.assess(ws, [job])[job.id] == pl.State("done")
    (ckpt / "w.bin").write_bytes(b"2")
    assert pl.assess(ws, [job])[job.id] == pl.State("stale", f"input changed: {ckpt} (checkpoint)")
