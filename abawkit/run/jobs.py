"""Jobs both plans make (``run/build.py``: per-frame tracks; ``run/build_video.py``: per-video tracks): the audio
and text stores, the frozen-backbone vision store, a demo's synthetic release, the submission name. Each takes the plan builder ``b``
(``run.build.Builder``: ``b.add(id, stage, args, deps)``) and the command line's ``RunInputs``; it reads the
recipe's config files and writes nothing."""

from __future__ import annotations

from abawkit.config import load_config
from abawkit.errors import AbawError
from abawkit.workspace import layout

TEXT = "text"  # the store of the words (``abaw extract text``)


def vision_store(recipe: str) -> str:
    """The vision feature name TMF fuses: extract.toml's vision.name, default "mae" (fine-tuned encoders
    write ``<name>-<task>[-fold<N>]``, a frozen backbone ``<name>``)."""
    from abawkit.stages.extract import ExtractConfig

    return load_config(ExtractConfig, "extract", recipe).vision.name or layout.VISION_BASE


def frozen_job(b, inp, prep: str) -> dict[int, str]:
    """vision = "frozen": one ``extract vision --checkpoint BACKBONE`` every task and fold fuses."""
    if inp.mae is None or not inp.mae.exists():
        raise AbawError("run: vision = \"frozen\" extracts straight from a backbone: pass --backbone FILE_OR_FOLDER")
    store = vision_store(inp.recipe)
    return {0: b.add(layout.features(store), "extract", ["extract", "vision", "--checkpoint", str(inp.mae),
                                                      "--name", store], [prep])}


def audio_job(b, inp, model: str, prep: str) -> str:
    """``extract audio --model M`` (a checkpoint from ``--audio M=PATH``; fbank needs none)."""
    ckpt = inp.audio.get(model)
    if model != "fbank" and not ckpt:
        raise AbawError(f"recipe {inp.recipe!r} fuses {model} features: pass --audio {model}=CHECKPOINT")
    return b.add(layout.features(model), "extract", ["extract", "audio", "--model", model, *(["--checkpoint", ckpt] if ckpt else [])], [prep])


def text_args(inp, recipe: str, synth: bool = False) -> list[str]:
    """``extract text`` arguments: --asr DIR (command line) or the release's transcripts (``synth``: the
    release is yet to be written, with them); --encoder DIR (command line), else the recipe's ``[text]
    encoder`` (``hashing`` on the synthetic release)."""
    from abawkit.stages.extract import ExtractConfig

    text = getattr(inp, "text", None) or {}
    source = ["--asr", text["asr"]] if text.get("asr") else ["--transcripts", str(inp.release / "transcripts")]
    if not text.get("asr") and not (inp.release / "transcripts").is_dir() and not synth:
        raise AbawError(f"recipe {recipe!r} fuses text: pass --asr WHISPER_DIR (or keep transcripts/ in the release)")
    encoder = text.get("encoder") or load_config(ExtractConfig, "extract", recipe).text.encoder
    if not encoder:
        raise AbawError(f"recipe {recipe!r} fuses text: pass --text-encoder DIR (a local transformers text encoder)")
    return ["extract", "text", *source, "--encoder", encoder]


def synth_job(b, release, seed: int, *extra: str) -> str:
    """A demo's first job: ``abaw synth RELEASE [EXTRA] --recipe R --seed S``, done once its record is written."""
    return b.add("synth", "synth", ["synth", str(release), *extra, "--recipe", b.inp.recipe, "--seed", str(seed)],
                 marker=f"{layout.RELEASE}/{layout.SYNTH_RECORD}", common=False)


def submission_name(cfg, recipe: str) -> str:
    """run.toml's ``name``, else submit.toml's."""
    from abawkit.stages.submit import SubmitConfig

    return cfg.name or load_config(SubmitConfig, "submit", recipe).name
