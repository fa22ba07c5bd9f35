"""Which models a prediction loads, what each one is (its identity), and whether they still fit together.

A TMF or a video-level model was trained on feature stores, and each store was extracted from an encoder
checkpoint: before anything is loaded, each link is checked against what the downstream side recorded when
it was made (the encoder's sha256 against the store's recorded checkpoint; each store's identity against the
one the model recorded). A mismatch stops with one line naming the stage to redo. The identities of everything
loaded are recorded in the prediction's manifest, so a retrained model makes the next prediction redo.

An identity is the one the stage's manifest records (``workspace.identity``); a TMF trained before
identities recorded its stores by their ``store.json`` content, which is compared instead.
Reads manifests, ``store.json`` and the checkpoints' bytes (sha256, cached). Writes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from abawkit.errors import AbawError
from abawkit.features.store import INFO
from abawkit.inference.decide import policy_path
from abawkit.inference.extractors import read_store, store_checkpoint
from abawkit.inference.models import Models, stage_dir, stage_hint
from abawkit.io import read_json
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.fingerprints import content_sha256, sha256_file
from abawkit.workspace.stage import MANIFEST

FEATURES = layout.features("")  # "features/": the prefix of a store's input name


def stage_identity(workdir: Path, name: str) -> str:
    """The identity of the finished stage ``name``: ``workspace.identity.stage_id`` (an output written before
    identities is migrated first, with one line)."""
    stage_dir(workdir, name)  # a missing stage: one line naming the command that makes it
    return ident.stage_id(workdir, name)


def extract_command(store_name: str, info: dict, ckpt: str | None) -> str:
    """The command that re-extracts ``features/<store_name>`` from the checkpoint it recorded."""
    s = info.get("settings") or {}
    if "model" in s:
        return f"abaw extract audio --model {s['model']}" + (f" --checkpoint {ckpt}" if ckpt else "") + " --force"
    m = re.fullmatch(r"finetune/(\w+)/fold(\d+)/best\.pt", ckpt or "")
    if m and store_name == layout.vision_store(m.group(1), int(m.group(2))):
        return f"abaw extract vision --task {m.group(1)} --fold {m.group(2)} --force"
    return f"abaw extract vision --checkpoint {ckpt} --name {store_name} --force"


def check_store(workdir: Path, store_name: str) -> None:
    """The checkpoint a store was extracted from must still be the same bytes (a file or a folder)."""
    d, info, manifest = read_store(workdir, store_name)
    rec = (manifest.get("inputs") or {}).get("checkpoint")
    if not rec:
        return  # fbank: no checkpoint
    path, name = store_checkpoint(workdir, manifest), layout.features(store_name)
    redo = extract_command(store_name, info, rec["path"])
    if path is None or not path.exists():
        raise AbawError(f"{name} was extracted from {rec.get('path')}, which is missing now: run `{redo}`")
    if ident.input_changes(workdir, "checkpoint", rec):  # the identity rule's own comparison
        raise AbawError(f"{name} was extracted from {rec['path']}, which has changed since: run `{redo}`")


def tmf_stores(workdir: Path, tmf_name: str) -> list[str]:
    """The feature stores a TMF (or a video-level model) recorded as its inputs, in recorded order."""
    inputs = read_json(stage_dir(workdir, tmf_name) / MANIFEST).get("inputs") or {}
    return [k[len(FEATURES):] for k in inputs if k.startswith(FEATURES)]


def check_tmf(workdir: Path, tmf_name: str) -> None:
    """Each store the TMF (or video-level model) was trained on must be the one it recorded (not re-extracted
    since)."""
    inputs = read_json(stage_dir(workdir, tmf_name) / MANIFEST).get("inputs") or {}
    for store in tmf_stores(workdir, tmf_name):
        check_store(workdir, store)
        rec, name = inputs[FEATURES + store], layout.features(store)
        if rec.get("kind") == "stage":
            now = stage_identity(workdir, name)
        else:  # recorded as the store's store.json (its sha256 or content id)
            now = content_sha256(stage_dir(workdir, name) / INFO)
        if now != ident.record_id(rec):
            raise AbawError(f"{tmf_name} was trained on {name}, which has been re-extracted since: "
                            f"run `{stage_hint(tmf_name)} --force`")


def check_words(models: Models, stores: list[str]) -> None:
    """A TMF fusing a text store made from transcript files needs ``--transcripts DIR``: said before any video."""
    given = getattr(models.cfg, "transcripts", "")
    if given and not Path(given).is_dir():
        raise AbawError(f"--transcripts {given}: folder not found")
    for store in stores:
        d, info, _ = read_store(models.workdir, store)
        settings = info.get("settings") or {}
        if settings.get("asr") == "transcripts" and not given:
            raise AbawError(f"{layout.features(store)} was made from transcript files: pass --transcripts DIR "
                            "holding <video stem>.json for each video (segments with start, end, text)")


def model_inputs(models: Models, tasks: tuple[str, ...], smooth: bool) -> dict[str, dict]:
    """Check every model this run loads, then return their records for the prediction's manifest:
    ``{name: {"path", "kind": "stage"|"file", "id"}}`` (stages by identity, a smoothing policy by content)."""
    out: dict[str, dict] = {}
    for t in tasks:
        for name in models.stages(t):
            stage_dir(models.workdir, name)  # a missing model: one line naming the command, before any video
            names = [name]
            if models.cfg.model in ("tmf", "video"):  # models trained on feature stores
                check_tmf(models.workdir, name)
                check_words(models, tmf_stores(models.workdir, name))
                names += [layout.features(s) for s in tmf_stores(models.workdir, name)]
            for n in names:
                out[n] = {"path": n, "kind": "stage", "id": stage_identity(models.workdir, n)}
        policy = policy_path(models.workdir, t)
        if smooth and policy.is_file():
            rel = layout.policy(t)
            out[rel] = {"path": rel, "kind": "file", "id": sha256_file(policy)}
    return out


def declared(workdir: Path, used: dict[str, dict]) -> dict[str, ident.Input]:
    """The models' records as a stage's input declarations (stages by identity, a policy file by content)."""
    return {n: ident.upstream(n) if rec["kind"] == "stage" else ident.file(layout.path(workdir, rec["path"]))
            for n, rec in used.items()}
