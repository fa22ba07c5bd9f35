"""``abaw run --track ah|emi``: the plan of a video-level track (A/H of ABAW 10/11, EMI), as jobs.

prep -> finetune[track, encoder fold] (a frame model on frames carrying their video's label; ``vision = "frozen"``:
one ``extract vision`` straight from ``--backbone`` instead) -> extract
vision[fold] + audio[model] + text (the release's ``transcripts/`` or a Whisper folder, then the recipe's
text encoder: ``hashing`` or a transformers folder) -> train video[track, fold] -> submit (the folds'
calibrated predictions averaged, ``stages/submit_video.py``) -> validate.

Reads ``recipes/<recipe>/run.toml`` (folds, encoder folds), ``video.toml`` (the features each track fuses)
and ``extract.toml`` (``[text]``: the encoder); the command line adds the text folders (``RunInputs.text``:
``asr``, ``encoder``). Writes nothing itself: ``build.build`` hands it the plan."""

from __future__ import annotations

from typing import Sequence

from abawkit import formats
from abawkit.config import load_config
from abawkit.errors import AbawError
from abawkit.labels import task
from abawkit.run.jobs import TEXT, audio_job, frozen_job, submission_name, text_args, vision_store
from abawkit.run.plan import Job
from abawkit.workspace import layout

COSTS = {"finetune": 3.0, "extract": 1.0, "video": 2.0, "submit": 0.2, "validate": 0.1}


def video_features(recipe: str, t: str) -> tuple[str, ...]:
    """The feature stores the recipe's video model fuses for track ``t`` (video.toml [features])."""
    from abawkit.stages.video import VideoConfig

    return tuple(getattr(load_config(VideoConfig, "video", recipe).features, t))


def add(b, id_: str, stage: str, args: Sequence[str], deps: Sequence[str] = (), **kw) -> str:
    """``Builder.add`` at this plan's cost of the stage (``COSTS``: the video stage reads ``video.toml``)."""
    return b.add(id_, stage, args, deps, cost=COSTS[stage], **kw)


def build_video(cfg, inp, synth: str, b) -> list[Job]:
    """The jobs of the video-level tracks in ``cfg.tasks``, dependencies first, appended to the plan builder
    ``b`` (``run.build.Builder``: passed in, so this module does not import the one that calls it)."""
    specs = [task(t) for t in cfg.tasks]
    if any(s.level != "video" for s in specs):
        raise AbawError("run: plan the video-level tracks (ah, emi) apart from the per-frame ones")
    if not cfg.folds:
        raise AbawError("run: name at least one fold")
    if cfg.vision not in ("finetune", "frozen"):
        raise AbawError(f"run: vision must be finetune or frozen, got {cfg.vision!r}")
    prep = b.add(layout.PREP, "prep", ["prep", "--release", str(inp.release)], [synth])
    frozen = frozen_job(b, inp, prep) if cfg.vision == "frozen" else {}  # one store from --backbone for every fold
    seen = {layout.VISION_BASE, vision_store(inp.recipe)}  # the names a video model fuses faces by
    feats = {s.name: video_features(inp.recipe, s.name) for s in specs}
    used = {f for fs in feats.values() for f in fs}
    audio = {m: audio_job(b, inp, m, prep) for m in sorted(used - seen - {TEXT})}
    text = add(b, layout.features(TEXT), "extract", text_args(inp, inp.recipe, bool(synth)), [prep]) if TEXT in used else ""
    name = submission_name(cfg, inp.recipe)
    for s in specs:
        vision = (frozen or encoders(b, cfg, inp, s.name, prep)) if seen & set(feats[s.name]) else {}
        folds = [add(b, layout.video_model(s.name, f), "video", ["train", "video", "--task", s.name, "--fold", str(f)],
                     [vision.get(f, vision.get(0, "")), *audio.values(), text, prep]) for f in cfg.folds]
        finish(b, s.name, name, folds)
    return b.jobs


def encoders(b, cfg, inp, t: str, prep: str) -> dict[int, str]:
    """finetune (``--init`` = --mae when given, else the recipe's init) + extract vision per encoder fold."""
    from abawkit.stages.finetune import FinetuneConfig

    if inp.mae is None and load_config(FinetuneConfig, "finetune", inp.recipe).init == "pretrain":
        raise AbawError(f"recipe {inp.recipe!r} fine-tunes a pre-trained encoder: pass --mae CHECKPOINT (or a backbone)")
    out = {}
    for f in cfg.encoder_folds or cfg.folds:
        init = ["--init", str(inp.mae)] if inp.mae else []
        ft = add(b, layout.finetune(t, f), "finetune", ["finetune", "--task", t, "--fold", str(f), *init], [prep])
        out[f] = add(b, layout.features(layout.vision_store(t, f)), "extract",
                     ["extract", "vision", "--task", t, "--fold", str(f)], [ft])
    return out


def finish(b, t: str, name: str, folds: list[str]) -> None:
    """submit (the folds averaged) -> validate."""
    w = b.inp.workdir
    sub = add(b, layout.submit_job(t), "submit", ["submit", "--track", t, "--name", name,
                                                  "--out", str(layout.path(w, layout.SUBMISSIONS))],
              folds, marker=f"{layout.submission(name)}/submission_{formats.tag(t)}.json", force=())
    add(b, layout.validate_job(t), "validate", ["validate", str(layout.path(w, layout.submission(name)) / formats.file_name(t)),
                                                "--track", t, "-w", str(w)], [sub], marker="", common=False, force=())
