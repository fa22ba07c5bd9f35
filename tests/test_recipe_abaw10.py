"""The abaw10-dinov2 recipe plans through `abaw run`: a frozen DINOv2 extraction, or fine-tuned encoders."""

from __future__ import annotations

from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.config import load_config
from abawkit.run import build

runner = CliRunner()


def plan(tmp_path, *sets: str) -> dict:
    release, backbone, wavlm = tmp_path / "release", tmp_path / "dinov2", tmp_path / "wavlm"
    for d in (release, backbone, wavlm):
        d.mkdir(exist_ok=True)
    inp = build.RunInputs(tmp_path / "w", "abaw10-dinov2", release, mae=backbone, audio={"wavlm": str(wavlm)})
    cfg = load_config(build.RunConfig, "run", "abaw10-dinov2", list(sets))
    return {j.id: j for j in build.build(cfg, inp)}


def test_frozen_plan_extracts_the_backbone_once(tmp_path):
    jobs = plan(tmp_path)
    assert not any(i.startswith(("pretrain", "finetune/")) for i in jobs)
    dino = jobs["features/dinov2"]
    assert dino.deps == ("prep",) and "--checkpoint" in dino.cmd and str(tmp_path / "dinov2") in dino.cmd
    assert set(jobs["tmf/expr/fold3"].deps) == {"features/dinov2", "features/wavlm"}
    assert jobs["tmf/au/fold0"].deps == ("features/dinov2",)
    assert {"smooth/va", "submit/au", "validate/expr"} <= set(jobs)


def test_finetuned_plan_names_each_tasks_store(tmp_path):
    jobs = plan(tmp_path, 'vision="finetune"')
    assert sum(i.startswith("finetune/") for i in jobs) == 3  # encoder_folds = [0]
    ft = jobs["finetune/expr/fold0"]
    assert ft.deps == ("prep",) and str(tmp_path / "dinov2") in ft.cmd
    ext = jobs["features/dinov2-expr"]
    assert ext.cmd[ext.cmd.index("--name") + 1] == "dinov2-expr"
    assert set(jobs["tmf/expr/fold4"].deps) == {"features/dinov2-expr", "features/wavlm"}


def test_dry_run_needs_a_backbone(tmp_path):
    (tmp_path / "r").mkdir()
    res = runner.invoke(app, ["run", "--release", str(tmp_path / "r"), "-w", str(tmp_path / "w"), "--recipe",
                              "abaw10-dinov2", "--audio", f"wavlm={tmp_path}", "--dry-run"])
    assert res.exit_code == 2 and "--backbone" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["run", "--release", str(tmp_path / "r"), "-w", str(tmp_path / "w"), "--recipe",
                              "abaw10-dinov2", "--backbone", str(tmp_path), "--audio", f"wavlm={tmp_path}", "--dry-run"])
    assert res.exit_code == 0 and "features/dinov2" in res.output.replace("\n", "")
