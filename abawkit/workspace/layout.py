"""The names of everything under a workspace (``<workdir>/``): the one module that spells them.

Every stage, launcher and reader asks here for a folder's name, so a rename is one edit and a reader can
never guess a name that a writer spelled differently. Names are relative to the workspace (a job id of
``abaw run`` is the name of the stage folder it writes); ``path(workdir, name)`` makes one absolute.

Reads and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

PREP = "prep"
PRETRAIN = "pretrain"
RUN = "run"  # the launcher's record: plan.json, jobs.json, logs/, done/, locks/
SUBMISSIONS = "submissions"
DEMO = "demo"
REPORT = "report"  # ``abaw report``'s default output folder
RELEASE = "release"  # the demo's synthetic release
POLICY = "policy.json"
SYNTH_RECORD = "synth.json"  # what ``abaw synth`` wrote into a release
VISION_BASE = "mae"  # the vision store name of fine-tuned encoders unless a recipe names another


def path(workdir: str | Path, name: str) -> Path:
    return Path(workdir) / name


def _fold(fold: int, tag: str = "") -> str:
    return f"fold{fold}" + (f"-{tag}" if tag else "")


def finetune(task: str, fold: int, tag: str = "") -> str:
    """``finetune/<task>/fold<N>[-<tag>]``: a fine-tuned frame model (``best.pt``)."""
    return f"finetune/{task}/{_fold(fold, tag)}"


def finetune_root(task: str) -> str:
    return f"finetune/{task}"


def tmf(task: str, fold: int, tag: str = "") -> str:
    """``tmf/<task>/fold<N>[-<tag>]``: a trained TMF and its validation/test predictions."""
    return f"tmf/{task}/{_fold(fold, tag)}"


def tmf_root(task: str) -> str:
    return f"tmf/{task}"


def video_model(task: str, fold: int, tag: str = "") -> str:
    """``video/<task>/fold<N>[-<tag>]``: a trained video-level model (A/H, EMI) and its per-video predictions."""
    return f"video/{task}/{_fold(fold, tag)}"


def video_root(task: str) -> str:
    return f"video/{task}"


def features(store: str) -> str:
    """``features/<store>``: one feature store (one ``.npy`` per video and ``store.json``)."""
    return f"features/{store}"


def vision_store(task: str, fold: int, base: str = VISION_BASE) -> str:
    """Store name of the features of task ``task``'s fold-``fold`` encoder: ``<base>-<task>[-fold<N>]``."""
    return f"{base}-{task}" if fold == 0 else f"{base}-{task}-fold{fold}"


def zeroshot(task: str) -> str:
    """A track's predictions made without training on it (CE from an EXPR model and a rule)."""
    return f"zeroshot/{task}"


def ensemble(task: str) -> str:
    return f"ensemble/{task}"


def smooth(task: str) -> str:
    return f"smooth/{task}"


def policy(task: str) -> str:
    """The smoothing policy ``abaw smooth-search`` chose for ``task``."""
    return f"{smooth(task)}/{POLICY}"


def predict(stem: str, video_sha256: str) -> str:
    """``predict/<stem>-<sha256[:8]>``: two videos with one file name (``clip.mp4`` from two folders, two
    phones' ``IMG_0001.MOV``) never share a folder; the same bytes under any name or folder do."""
    return f"predict/{stem}-{video_sha256[:8]}"


def submission(name: str) -> str:
    return f"{SUBMISSIONS}/{name}"


def submit_job(task: str, tag: str = "") -> str:
    """Job id of ``abaw run``'s submit of one track (it writes under ``submission(name)``, not here)."""
    return f"submit/{task}" + (f"-{tag}" if tag else "")


def validate_job(task: str) -> str:
    """Job id of ``abaw run``'s check of one track's submission (it writes no folder)."""
    return f"validate/{task}"


def demo_file(name: str) -> str:
    """A file of ``abaw demo``'s table: ``demo/<name>``."""
    return f"{DEMO}/{name}"


def run_file(name: str) -> str:
    """A file or folder of the launcher's record: ``run/<name>``."""
    return f"{RUN}/{name}"
