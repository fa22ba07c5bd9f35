"""Issue 23, one identity rule: stage, `abaw run` and `abaw status` defects of "What happens today", through the CLI.

Every test here failed on main before the issue's work (the reason is in each docstring). The trained workspace
(``identity_ws.trained``: VA, TMF over mae + hubert, its HuBERT folder inside the workspace) is shared and
copied before any change; ``abaw status`` runs in a subprocess 400 columns wide so no line wraps. Assertions
use the contract's wording only: "input changed", "labels changed", "starting over", "migrated".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from identity_ws import abaw, copy_ws, flat, invoke, manifests, read_json, tiny_recipe, trained, write_hubert

STATES = ("done", "stale", "pending", "running", "queued", "failed", "blocked")


@pytest.fixture(scope="module")
def tw(tmp_path_factory):
    return trained(tmp_path_factory)


def status(ws) -> str:
    res = abaw("status", "-w", ws)
    assert res.returncode == 0 and "Traceback" not in res.stdout, res.stdout
    return res.stdout


def state(out: str, job: str) -> str:
    """The state in ``job``'s row of the status table."""
    for line in out.splitlines():
        words = line.replace("│", " ").split()
        if words and words[0] == job:
            return next(w for w in words[1:] if w in STATES)
    raise AssertionError(f"no row for {job}:\n{out}")


def lines_with(out: str, *words: str) -> list[str]:
    return [ln for ln in out.splitlines() if all(w in ln for w in words)]


def test_status_sees_an_audio_checkpoint_retrained_in_place(tw, tmp_path):
    """Main: the HuBERT folder rewritten in place (same names and shapes) left features/hubert and all after it done."""
    ws = copy_ws(tw, tmp_path / "ws")
    assert state(status(ws), "features/hubert") == "done"
    write_hubert(ws / "checkpoints" / "hubert", seed=1)
    out = status(ws)
    assert state(out, "features/hubert") != "done", out
    assert lines_with(out, "features/hubert", "input changed"), out
    assert state(out, "tmf/va/fold0") != "done", out


def test_status_and_prep_see_a_label_file_edited_in_place(tw, tmp_path):
    """Main: a corrected label file under the same name left prep done in `abaw status`, and `abaw prep` by
    hand answered "already done". A run of its own (private release; pre-training fails, prep is done)."""
    release = shutil.copytree(tw.release, tmp_path / "release")
    recipe = tiny_recipe(tmp_path / "recipe", tmf=[("va", '["mae"]')])  # no audio job: prep is all that runs
    ws, empty = tmp_path / "ws", tmp_path / "no-images"
    empty.mkdir()  # pre-training on an empty face folder fails; prep runs beside it
    invoke("run", "--release", release, "-w", ws, "--recipe", recipe, "--tasks", "va", "--folds", "0",
           "--images", empty, "--jobs", "2", ok=False)
    assert state(status(ws), "prep") == "done"
    rel = "VA_Estimation_Challenge/Train_Set/synth003.txt"
    rows = (release / rel).read_text().splitlines()
    rows[1] = "0.5,-0.5" if rows[1] != "0.5,-0.5" else "0.25,-0.25"  # a corrected first frame
    (release / rel).write_text("\n".join(rows) + "\n")
    out = status(ws)
    assert state(out, "prep") != "done", out
    assert lines_with(out, "labels changed", rel), out
    redo = invoke("prep", "--release", release, "-w", ws, "--recipe", recipe)
    assert "already done" not in flat(redo.output), redo.output
    assert lines_with(redo.output, "changed"), redo.output


CRASH = """import runpy, torch
def save(*args, **kwargs):
    raise RuntimeError("injected crash: the machine went down")
torch.save = save
runpy.run_module("abawkit.cli", run_name="__main__")
"""


def test_a_partial_started_on_other_inputs_starts_over(tw, tmp_path):
    """Main: a crashed TMF's .partial was resumed after its features were re-extracted (other pooling, same
    dims), with no word: the resumed model was built on the old features."""
    ws = copy_ws(tw, tmp_path / "ws")
    args = ["train", "tmf", "--task", "va", "--fold", "1", "-w", str(ws), "--recipe", str(tw.recipe)]
    crash = subprocess.run([sys.executable, "-c", CRASH, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env={**os.environ, "COLUMNS": "400"}, timeout=600)
    assert crash.returncode != 0 and "injected crash" in crash.stdout, crash.stdout
    assert (ws / "tmf" / "va" / "fold1.partial").is_dir(), "the crash should keep the stage's .partial"
    invoke("extract", "vision", "--task", "va", "--fold", "0", "--pool", "cls", "--force", "--set", "vision.workers=0",
           "-w", ws, "--recipe", tw.recipe)
    again = invoke(*args)
    assert "starting over" in flat(again.output), again.output
    assert (ws / "tmf" / "va" / "fold1" / "manifest.json").is_file()


def test_extract_audio_with_another_chunk_s_redoes_the_store(tw, tmp_path):
    """Main: chunk_s was not in the extractor key: `--set audio.chunk_s=1.0` answered "already done"."""
    ws = copy_ws(tw, tmp_path / "ws")
    store = ws / "features" / "hubert"
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*.npy")}
    res = invoke("extract", "audio", "--model", "hubert", "--checkpoint", ws / "checkpoints" / "hubert",
                 "--set", "audio.chunk_s=1.0", "-w", ws, "--recipe", tw.recipe)
    assert "already done" not in flat(res.output), res.output
    after = {p.relative_to(store): p.read_bytes() for p in store.rglob("*.npy")}
    assert after.keys() == before.keys() and any(after[k] != before[k] for k in before)  # 1 s windows on 2 s clips


@pytest.mark.parametrize("model", ["wavlm", "whisper"])
def test_a_missing_wavlm_or_whisper_store_hints_extract_audio(tw, tmp_path, model):
    """Main: AUDIO_NAMES lacked wavlm and whisper: the hint said `abaw extract vision`."""
    ws = copy_ws(tw, tmp_path / "ws")
    res = invoke("train", "tmf", "--task", "va", "--fold", "1", "--features", f"mae,{model}", "-w", ws,
                 "--recipe", tw.recipe, ok=False)
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert f"abaw extract audio --model {model}" in flat(res.output), res.output
    assert "abaw extract vision" not in flat(res.output), res.output


def test_a_workspace_without_identities_is_migrated_in_one_line(tw, tmp_path):
    """Main: no manifest has an "identity"; nothing migrated or said so (a workspace of main stays as main left it)."""
    ws = copy_ws(tw, tmp_path / "ws")
    for path in manifests(ws):
        data = read_json(path)
        if "identity" in data:
            st = os.stat(path)
            del data["identity"]
            path.write_text(json.dumps(data))
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only the key goes: the plan's clocks stay
    first = status(ws)
    said = [ln for ln in first.splitlines() if ln.lstrip().startswith("migrated")]
    assert len(said) == 1, first
    assert re.search(r"recorded identities for \d+ outputs", said[0]), said[0]
    assert state(first, "features/hubert") == "done", first  # computed from what is there now
    second = status(ws)
    assert not [ln for ln in second.splitlines() if ln.lstrip().startswith("migrated")], second
    write_hubert(ws / "checkpoints" / "hubert", seed=1)  # the identities recorded are real: a change shows
    assert state(status(ws), "features/hubert") != "done"
