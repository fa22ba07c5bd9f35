"""``abaw extract text``: transcripts with timestamps, segment embeddings on the frames they span, a speech
flag, local checkpoints held to the trust rules, a store key that follows every setting. Models are tiny
random-weight Whisper / BERT folders saved to disk and read through the real loaders (``text_models``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as T
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.features.asr import Segment
from abawkit.features.store import FeatureStore
from abawkit.features.text import TRANSCRIPTS, place_segments, read_transcript, write_transcript
from text_models import tiny_bert, tiny_whisper

runner = CliRunner()
SPEECH = Path(__file__).parent / "data" / "speech"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text-models")
    return {"whisper": tiny_whisper(root / "whisper"), "bert": tiny_bert(root / "bert"),
            "bert2": tiny_bert(root / "bert2", seed=1)}


@pytest.fixture
def ws(prep_workspace, tmp_path) -> Path:
    shutil.copytree(prep_workspace, tmp_path / "w")
    return tmp_path / "w"


def extract(ws: Path, *args: str):
    result = runner.invoke(app, ["extract", "text", "-w", str(ws), "-s", "threads=1", *args])
    return result


def store(ws: Path, name: str = "text") -> FeatureStore:
    return FeatureStore(ws / "features" / name)


def covered(segments: list[dict], n_frames: int, fps: float) -> np.ndarray:
    t = np.arange(n_frames) / fps
    return np.any([(t >= s["start"]) & (t < s["end"]) for s in segments] or [np.zeros(n_frames, bool)], axis=0)


def reference_embedding(folder: Path, text: str, max_tokens: int = 128) -> np.ndarray:
    """The encoder's last hidden state averaged over the text's tokens, straight from transformers."""
    tok, model = T.AutoTokenizer.from_pretrained(folder), T.AutoModel.from_pretrained(folder).eval()
    batch = tok([text], truncation=True, max_length=max_tokens, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state[0].mean(0).numpy()


def test_place_segments_flags_every_frame_outside_speech():
    segs = [Segment(0.1, 0.3, "a"), Segment(0.25, 0.5, "b"), Segment(0.9, 0.9, "empty span")]
    emb = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    out = place_segments(segs, emb, np.arange(12) / 10.0)  # frames at 0.0, 0.1, ..., 1.1 s
    assert out.shape == (12, 3)
    np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])  # start <= t < end
    np.testing.assert_array_equal(out[1:3, :2], [[1, 2], [1, 2]])
    np.testing.assert_array_equal(out[3:5, :2], [[3, 4], [3, 4]])  # 0.3 is in "b" only; overlap: the later
    assert not out[out[:, -1] == 0].any()  # no speech: zeros, flag 0


def test_transcripts_read_back_and_bad_files_are_one_line(tmp_path):
    segs = [Segment(0.5, 1.25, "hello there", ({"word": "hello", "start": 0.5, "end": 0.9},))]
    path = write_transcript(tmp_path / "v.json", "v", "whisper", segs, 2.0)
    assert read_transcript(path) == segs
    assert json.loads(path.read_text())["segments"][0]["text"] == "hello there"
    bad = {"no list": {"segments": {}}, "nan": {"segments": [{"start": "x", "end": 1, "text": "a"}]},
           "reversed": {"segments": [{"start": 2, "end": 1, "text": "a"}]},
           "no text": {"segments": [{"start": 0, "end": 1}]}}
    fields = {"no list": "[segments]", "nan": "[segments[0].start]", "reversed": "[segments[0]]",
              "no text": "[segments[0].text]"}
    for name, body in bad.items():
        (tmp_path / "bad.json").write_text(json.dumps(body))
        with pytest.raises(AbawError, match=r"bad\.json") as err:
            read_transcript(tmp_path / "bad.json")
        assert fields[name] in str(err.value) and "\n" not in str(err.value)


def test_whisper_transcripts_and_store_on_the_prep_clock(ws, models):
    result = extract(ws, "--asr", str(models["whisper"]), "--encoder", str(models["bert"]),
                     "-s", "text.max_new_tokens=8")
    assert result.exit_code == 0, result.output
    s, prep = store(ws), load_prep(ws)
    info = s.info()
    assert info["model"] == "text" and info["settings"]["asr"] == "whisper" and info["dim"] == 33
    speech = 0
    for r in prep.videos.itertuples():
        arr = np.asarray(s.read(r.video, r.n_frames), np.float32)
        assert arr.shape == (r.n_frames, 33)
        body = json.loads((s.root / TRANSCRIPTS / f"{r.video}.json").read_text())
        assert body["video"] == r.video and body["asr"] == "whisper"
        assert all(0 <= g["start"] < g["end"] <= body["duration"] + 1e-6 and g["text"] for g in body["segments"])
        inside = covered(body["segments"], r.n_frames, r.fps)
        np.testing.assert_array_equal(arr[:, -1], inside)  # the flag is exactly the transcript's spans
        assert not arr[~inside].any()
        speech += int(inside.sum())
    assert speech > 0
    from abawkit.features.asr import build_asr  # deterministic: the same words and times again
    from abawkit.features.text import transcribe

    r = prep.videos.iloc[0]
    again, _ = transcribe(build_asr(str(models["whisper"]), max_new_tokens=8), r.audio)
    assert [g.as_json() for g in again] == json.loads((s.root / TRANSCRIPTS / f"{r.video}.json").read_text())["segments"]


def test_whisper_long_audio_goes_window_by_window_on_one_clock(models):
    from abawkit.features.asr import build_asr

    wave = (0.1 * np.random.default_rng(0).standard_normal(16000 * 41)).astype(np.float32)  # 41 s: two windows
    asr = build_asr(str(models["whisper"]), max_new_tokens=8)
    generate, frames = asr.model.generate, []

    def spy(input_features, **kw):  # what Whisper's long-form decoding is handed: the whole track's mel frames
        frames.append(input_features.shape[-1])
        return generate(input_features, **kw)

    asr.model.generate = spy
    segs = asr(wave)
    assert frames == [4100]  # 41 s at 10 ms, not cut to one 30 s window
    assert segs and all(a.end <= b.start + 1e-6 for a, b in zip(segs, segs[1:]))  # in order, no overlap
    assert all(0 <= s.start < s.end <= 41.0 for s in segs)  # one clock, cut at the audio's end
    frames.clear()
    asr(wave[:16000 * 2])
    assert frames == [3000]  # short audio: one window padded to 30 s


def test_given_transcripts_put_the_encoder_embedding_on_their_frames(ws, models, tmp_path):
    prep = load_prep(ws)
    v0, v1 = list(prep.videos["video"])[:2]
    given = tmp_path / "given"
    write_transcript(given / f"{v0}.json", v0, "by hand", [Segment(0.5, 1.0, "hello there"),
                                                          Segment(1.2, 1.5, "i am not sure")], None)
    write_transcript(given / f"{v1}.json", v1, "by hand", [], None)
    result = extract(ws, "--transcripts", str(given), "--encoder", str(models["bert"]))
    assert result.exit_code == 0, result.output
    s, fps = store(ws), float(prep.videos.set_index("video").loc[v0, "fps"])
    arr = np.asarray(s.read(v0), np.float32)
    t = np.arange(len(arr)) / fps
    np.testing.assert_array_equal(arr[:, -1], ((t >= 0.5) & (t < 1.0)) | ((t >= 1.2) & (t < 1.5)))
    k = int(np.argmax(t >= 0.5))
    np.testing.assert_allclose(arr[k, :-1], reference_embedding(models["bert"], "hello there"), atol=2e-3)  # float16
    np.testing.assert_allclose(arr[int(np.argmax(t >= 1.2)), :-1], reference_embedding(models["bert"], "i am not sure"),
                               atol=2e-3)
    assert not np.asarray(s.read(v1)).any()  # no speech at all
    flags = s.info()["flags"]
    assert v0 not in flags and v1 not in flags and all(f == {"missing_transcript": True} for f in flags.values())
    assert len(flags) == len(prep.videos) - 2


def test_store_key_follows_every_setting_and_input(ws, models, tmp_path):
    prep = load_prep(ws)
    v0 = prep.videos["video"].iloc[0]
    given = tmp_path / "given"
    text = "hello there i am not sure it is fine good bad"
    write_transcript(given / f"{v0}.json", v0, "by hand", [Segment(0.0, 1.0, text)], None)

    def run(*extra: str) -> tuple[dict, np.ndarray]:
        result = extract(ws, "--transcripts", str(given), "--encoder", str(models["bert"]), *extra)
        assert result.exit_code == 0, result.output
        return store(ws).info(), np.asarray(store(ws).read(v0), np.float32)

    info, arr = run()
    info4, arr4 = run("-s", "text.max_tokens=4")  # the text cut to 4 tokens: another embedding, another store
    assert info4["settings"]["max_tokens"] == 4 and not np.array_equal(arr, arr4)
    assert {k: v for k, v in info4["settings"].items() if k != "max_tokens"} == \
           {k: v for k, v in info["settings"].items() if k != "max_tokens"}
    info_b, arr_b = run("--encoder", str(models["bert2"]))  # other weights (retrained, same shape)
    assert info_b["checkpoint_sha256"] != info4["checkpoint_sha256"] and not np.array_equal(arr_b, arr4)
    write_transcript(given / f"{v0}.json", v0, "by hand", [Segment(0.0, 0.5, text)], None)  # an edited transcript
    info_t, arr_t = run("--encoder", str(models["bert2"]))
    assert info_t["settings"]["asr_id"] != info_b["settings"]["asr_id"]
    assert arr_t[:, -1].sum() < arr_b[:, -1].sum()


def test_remote_code_and_pickled_checkpoints_are_refused(ws, models, tmp_path):
    from test_trust import Payload

    remote = tmp_path / "remote"
    shutil.copytree(models["bert"], remote)
    cfg = json.loads((remote / "config.json").read_text())
    (remote / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModel": "modeling_evil.EvilModel"}}))
    pickled = tmp_path / "pickled"
    shutil.copytree(models["bert"], pickled)
    from safetensors.torch import load_file

    sd = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save({**sd, "payload": Payload(tmp_path / "payload-ran")}, pickled / "pytorch_model.bin")
    given = tmp_path / "given"
    given.mkdir()
    for folder, words in ((remote, "auto_map"), (pickled, "holds io.open")):
        result = extract(ws, "--transcripts", str(given), "--encoder", str(folder))
        line = " ".join(result.output.split())
        assert result.exit_code == 2 and words in line and "Traceback" not in result.output, result.output
        assert not (ws / "features" / "text").exists()
    assert not (tmp_path / "payload-ran").exists()
    result = extract(ws, "--asr", str(remote), "--encoder", str(models["bert"]))  # a recogniser with its own code
    assert result.exit_code == 2 and "auto_map" in result.output


def test_one_source_of_text_and_an_encoder_are_required(ws, models, tmp_path):
    for args in ([], ["--asr", str(models["whisper"]), "--transcripts", str(tmp_path)]):
        result = extract(ws, *args, "--encoder", str(models["bert"]))
        assert result.exit_code == 2 and "one of --asr" in result.output
    result = extract(ws, "--transcripts", str(tmp_path))
    assert result.exit_code == 2 and "--encoder" in result.output
    result = extract(ws, "--asr", str(tmp_path / "nowhere"), "--encoder", str(models["bert"]))
    assert result.exit_code == 2 and "not found" in result.output


def test_pocketsphinx_absent_is_one_line(ws, models, monkeypatch):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pocketsphinx" else find(name, *a))
    result = extract(ws, "--asr", "pocketsphinx", "--encoder", str(models["bert"]))
    assert result.exit_code == 2 and "needs the pocketsphinx package" in result.output and "Traceback" not in result.output
    assert not (ws / "features" / "text").exists()


def test_pocketsphinx_transcribes_real_speech():
    pytest.importorskip("pocketsphinx")
    import soundfile as sf

    from abawkit.features.asr import build_asr

    wave, sr = sf.read(SPEECH / "librivox-austen-0870.flac", dtype="float32")
    assert sr == 16000
    segs = build_asr("pocketsphinx")(wave)
    said = {w["word"] for s in segs for w in s.words}
    truth = (SPEECH / "librivox-austen-0870.txt").read_text().split()
    assert segs and 0 <= segs[0].start < segs[-1].end <= len(wave) / sr + 1e-6
    assert sum(w in said for w in truth) / len(truth) >= 0.5  # measured 15 of 22 (pocketsphinx 5.1.1): "mr", names, rare words
    assert all(s.start <= w["start"] < w["end"] <= s.end + 0.05 for s in segs for w in s.words)
