"""`abaw run --track mtl|ce` plans a track of a later edition like the classic ones (dry runs)."""

from __future__ import annotations

from typer.testing import CliRunner

from abawkit.cli import app

runner = CliRunner()


def _dry(tmp_path, *args: str) -> str:
    release = tmp_path / "release"
    release.mkdir(exist_ok=True)
    result = runner.invoke(app, ["run", "--release", str(release), "-w", str(tmp_path / "w"), "--dry-run", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_mtl_track_plans_one_model_with_three_heads_per_fold(tmp_path):
    out = _dry(tmp_path, "--track", "mtl")
    assert "recipe demo-mtl" in out
    for job in ("prep", "pretrain", "finetune/mtl/fold0", "features/mae-mtl", "features/fbank", "tmf/mtl/fold1",
                "ensemble/mtl", "smooth/mtl", "submit/mtl", "validate/mtl"):
        assert job in out, job
    assert "finetune/au" not in out and "tmf/va" not in out


def test_ce_track_passes_compound_faces_to_prep_and_needs_no_audio(tmp_path):
    faces = tmp_path / "compound_faces"
    faces.mkdir()
    out = _dry(tmp_path, "--track", "ce", "--compound", str(faces))
    for job in ("finetune/ce/fold0", "features/mae-ce", "tmf/ce/fold0", "smooth/ce", "submit/ce"):
        assert job in out, job
    assert "features/fbank" not in out  # the recipe fuses vision alone for compound faces (still images)
    from abawkit.config import load_config
    from abawkit.run.build import RunConfig, RunInputs, build

    inp = RunInputs(tmp_path / "w", "demo-ce", tmp_path / "release", compound=(faces,))
    prep = next(j for j in build(load_config(RunConfig, "run", "demo-ce"), inp) if j.id == "prep")
    assert prep.cmd[prep.cmd.index("--compound") + 1] == str(faces)


def test_track_and_tasks_together_is_one_line(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    result = runner.invoke(app, ["run", "--release", str(release), "-w", str(tmp_path / "w"), "--dry-run",
                                 "--track", "mtl", "--tasks", "au"])
    assert result.exit_code == 2 and "give one of them" in result.output
