"""The house rules of abawkit's package, checked on its sources (``benchmarks/house_counts.py`` measures them):
no stage module imports another, no import cycle, no file over 400 lines, workspace folder names only from
``workspace/layout.py``, and one implementation of each shared rule.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from abawkit.errors import AbawError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("house_counts", ROOT / "benchmarks" / "house_counts.py")
hc = importlib.util.module_from_spec(_spec)
sys.modules["house_counts"] = hc  # dataclasses look their module up
_spec.loader.exec_module(hc)


@pytest.fixture(scope="module")
def mods():
    return hc.modules(ROOT)


# ----------------------------------------------------------------------------- (a) stages


def test_no_stage_imports_another(mods):
    assert hc.stage_imports(mods) == []


# ----------------------------------------------------------------------------- (b) cycles
def test_no_import_cycle_at_module_level(mods):
    assert hc.cycles(mods) == []


def test_no_import_cycle_even_through_imports_in_functions(mods):
    """A function-level import hides a cycle from Python, not from a reader (facetrack <-> media was one)."""
    assert hc.cycles(mods, inner=True) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "abawkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from abawkit.b import x\n")
    (pkg / "b.py").write_text("def x():\n    from abawkit import a\n")
    (pkg / "c.py").write_text("from abawkit import a\n")
    mods = hc.modules(tmp_path)
    assert hc.cycles(mods) == []
    assert hc.cycles(mods, inner=True) == [["abawkit.a", "abawkit.b"]]


# ----------------------------------------------------------------------------- (c) file length


def test_no_file_over_400_lines(mods):
    assert hc.long_files(mods) == []


# ----------------------------------------------------------------------------- (d) workspace names


def test_no_workspace_path_fstring_outside_layout(mods):
    assert hc.path_fstrings(mods) == []


def test_the_fstring_check_sees_a_workspace_path():
    assert hc.FSTRING_RE.search('stage(workdir, f"tmf/{t}/fold{f}")')
    assert hc.FSTRING_RE.search("p = f'features/{name}'")
    assert not hc.FSTRING_RE.search('f"{t} folds"')


# ----------------------------------------------------------------------------- (e) one implementation each


def test_each_rule_lives_in_one_place(mods):
    assert all(len(files) == 1 for files in hc.rule_places(mods).values()), hc.rule_places(mods)


def test_nearest_is_one_rule_ties_to_the_earlier_frame():
    from abawkit.frames import nearest, nearest_filled

    have = np.array([2, 6, 10])
    assert nearest(have, np.array([1, 2, 4, 5, 8, 11])).tolist() == [0, 0, 0, 1, 1, 2]  # 4: 2 and 6 tie -> 2
    vid = np.array(["a"] * 5 + ["b"] * 2)
    frame = np.array([3, 1, 2, 5, 4, 1, 2])  # rows in any order
    has = np.array([False, True, False, True, False, False, False])
    assert nearest_filled(vid, frame, has).tolist() == [1, 1, 1, 5, 5, -1, -1]  # 3: 1 and 5 tie -> 1


def test_halves_of_a_name():
    from abawkit.release.annotations import half_of, pair_names, source_key

    assert [half_of(n) for n in ("v7_left", "v7_right", "v7", "left_v7")] == ["left", "right", None, None]
    assert [source_key(n) for n in pair_names("v7")] == ["v7", "v7"]


def test_one_walker_one_rule_for_dangling_links(tmp_path):
    """``files.walk`` (discovery, face folders) and the fingerprints agree: a dangling link is an error."""
    from abawkit.files import walk
    from abawkit.workspace.fingerprints import listing_sha256

    (tmp_path / "crops" / "v1").mkdir(parents=True)
    (tmp_path / "crops" / "v1" / "00001.jpg").write_bytes(b"x")
    (tmp_path / "crops" / ".hidden").mkdir()
    (tmp_path / "crops" / "v1_again").symlink_to("v1")  # one folder, two names: the first wins
    assert [(os.path.relpath(d, tmp_path), ds, fs) for d, ds, fs in walk(tmp_path)] == [
        (".", ["crops"], []), ("crops", ["v1"], []), ("crops/v1", [], ["00001.jpg"])]
    (tmp_path / "crops" / "v2").symlink_to(tmp_path / "gone")
    for listing in (lambda p: list(walk(p)), listing_sha256):
        with pytest.raises(AbawError, match="crops/v2: dangling symbolic link"):
            listing(tmp_path)
    assert list(walk(tmp_path / "nothing")) == []


def test_one_autocast_bf16_only_where_asked():
    import torch

    from abawkit.devices import amp_precision, precision_autocast

    assert amp_precision(torch.device("cpu"), True) == "fp32"  # training keeps fp32 on the CPU
    assert amp_precision(torch.device("cuda"), True) == "bf16"
    assert amp_precision(torch.device("cuda"), False) == "fp32"
    with precision_autocast("cpu", "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with precision_autocast("cpu", "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_a_task_spec_passes_through():
    from abawkit.labels import task

    spec = task("VA")
    assert task(spec) is spec
    with pytest.raises(AbawError, match="unknown task 'x'"):
        task("x")


def test_layout_names_what_run_and_demo_write():
    from abawkit.workspace import layout

    assert layout.finetune("va", 2, "x") == "finetune/va/fold2-x"
    assert layout.features(layout.vision_store("au", 0)) == "features/mae-au"
    assert layout.features(layout.vision_store("au", 3, "vit")) == "features/vit-au-fold3"
    assert layout.submit_job("va", "fold0") == "submit/va-fold0"
    assert layout.validate_job("expr") == "validate/expr"
    assert layout.demo_file("ablation.json") == "demo/ablation.json"
