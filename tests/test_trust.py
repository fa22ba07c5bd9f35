"""Untrusted files: checkpoints load with ``weights_only`` (payloads never run), ``--trust-checkpoint``
is an explicit opt-in with a warning, weights are never silently random, outputs follow the umask."""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import stat

import pytest
import torch
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.errors import AbawError
from abawkit.models.checkpoints import load_encoder, read_checkpoint, trusting
from abawkit.models.mae import MAE, ViTEncoder, encoder_arch

runner = CliRunner()
ARCH = encoder_arch("micro")


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears only if the pickle ran code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_checkpoint(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": Payload(marker)}}, path)
    return path, marker


def mae_training_checkpoint(path: pathlib.Path, **args: object) -> dict:
    """What facebookresearch/mae's ``misc.save_model`` writes: model, optimizer, epoch, scaler, args."""
    mae = MAE(ARCH, decoder_dim=32, decoder_depth=1, decoder_heads=2)
    opt = torch.optim.AdamW(mae.parameters(), lr=1e-3)
    mae(torch.rand(2, 3, 32, 32))[0].backward()
    opt.step()
    scaler = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}
    torch.save({"model": mae.state_dict(), "optimizer": opt.state_dict(), "epoch": 399, "scaler": scaler,
                "args": argparse.Namespace(model="mae_vit_base_patch16", mask_ratio=0.75, norm_pix_loss=True,
                                           output_dir="./output_dir", **args)}, path)
    return mae.state_dict()


@pytest.mark.parametrize("command", [["extract", "vision", "--checkpoint"], ["finetune", "--task", "au", "--init"]])
def test_malicious_pickle_never_runs_and_exits_2(tmp_path, command, prep_workspace):
    path, marker = evil_checkpoint(tmp_path)
    shutil.copytree(prep_workspace, tmp_path / "w")  # a stage checks its upstream (prep) before its checkpoint
    result = runner.invoke(app, [*command, str(path), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    assert not marker.exists()
    line = " ".join(result.output.split())
    assert str(path) in line and "holds io.open" in line and "--trust-checkpoint" in line
    assert "Traceback" not in result.output
    assert not [p for p in (tmp_path / "w").rglob("*") if (p.is_file() or p.name.endswith(".partial"))
                and not p.relative_to(tmp_path / "w").parts[0] == "prep"]  # nothing written beside prep
    with trusting():  # the payload is live: fully unpickled, it runs (then the format is refused)
        with pytest.raises(AbawError):
            load_encoder(ViTEncoder(ARCH), path)
    assert marker.exists()


def test_official_mae_training_checkpoint_loads_safely(tmp_path):
    sd = mae_training_checkpoint(tmp_path / "checkpoint-399.pth")
    obj = read_checkpoint(tmp_path / "checkpoint-399.pth")
    assert obj["epoch"] == 399 and obj["args"].mask_ratio == 0.75 and "state" in obj["optimizer"]
    enc = ViTEncoder(ARCH)
    assert load_encoder(enc, obj).format == "mae"
    assert all(torch.equal(v, sd[k]) for k, v in enc.state_dict().items())


def test_trust_checkpoint_is_an_explicit_opt_in_with_a_warning(tmp_path):
    path = tmp_path / "mae.pth"
    mae_training_checkpoint(path, output_path=pathlib.Path("/runs/x"))  # a Path: beyond the allow-list
    result = runner.invoke(app, ["extract", "vision", "--checkpoint", str(path), "--workdir", str(tmp_path / "w")])
    assert result.exit_code == 2 and "PosixPath" in result.output and "--trust-checkpoint" in result.output
    result = runner.invoke(app, ["extract", "vision", "--checkpoint", str(path), "--workdir", str(tmp_path / "w"),
                                 "--trust-checkpoint"])
    out = " ".join(result.output.split())
    assert "warning: --trust-checkpoint" in out and "can run any code" in out
    assert "abaw prep" in out and "PosixPath" not in out  # the checkpoint loaded; the next missing piece is prep
    with trusting():
        assert read_checkpoint(path)["args"].output_path == pathlib.Path("/runs/x")


def test_truncated_and_foreign_checkpoints_are_one_line(tmp_path):
    mae_training_checkpoint(tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:5000])
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    for name in ("cut.pth", "text.pth"):
        result = runner.invoke(app, ["extract", "vision", "--checkpoint", str(tmp_path / name), "-w", str(tmp_path)])
        assert result.exit_code == 2 and "not a readable checkpoint" in result.output, result.output
        assert len(result.output.strip().splitlines()) <= 2 and "Traceback" not in result.output


def test_vggish_without_weights_exits_2(prep_workspace, tmp_path):
    result = runner.invoke(app, ["extract", "audio", "--model", "vggish", "--workdir", str(prep_workspace)])
    assert result.exit_code == 2, result.output
    assert "VGGish needs its weights" in result.output and "--checkpoint" in result.output
    assert not (prep_workspace / "features" / "vggish").exists()
    assert not (prep_workspace / "features" / "vggish.partial").exists()


def test_hf_audio_folder_with_unsafe_pickle_is_refused(tmp_path):
    from transformers import HubertConfig, HubertModel

    from abawkit.features.audio import build_audio_extractor

    folder = tmp_path / "hubert"
    HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             conv_dim=(32,), conv_stride=(5,), conv_kernel=(10,),
                             num_conv_pos_embeddings=16)).save_pretrained(folder)
    from safetensors.torch import load_file

    sd = load_file(folder / "model.safetensors")  # an older-style folder: pickled weights only
    (folder / "model.safetensors").unlink()
    sd["payload"] = Payload(tmp_path / "payload-ran")
    torch.save(sd, folder / "pytorch_model.bin")
    with pytest.raises(AbawError, match="holds io.open, which could run code.*--trust-checkpoint"):
        build_audio_extractor("hubert", folder)
    assert not (tmp_path / "payload-ran").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from abawkit.engine import save_state
    from abawkit.io import write_json

    old = os.umask(umask)
    try:
        write_json(tmp_path / "sub" / "a.json", {"a": 1})
        save_state(tmp_path / "b.pt", {"x": torch.zeros(1)})
    finally:
        os.umask(old)
    for p in (tmp_path / "sub" / "a.json", tmp_path / "b.pt"):
        assert stat.S_IMODE(p.stat().st_mode) == mode, p


def test_numpy_values_and_older_resume_checkpoints_load_safely(tmp_path):
    import random

    import numpy as np

    torch.save({"rng": {"python": random.getstate(), "numpy": np.random.get_state()}, "best": {"score": np.float64(0.5)}},
               tmp_path / "last.pt")  # what this project's resume files held before their RNG state was made plain
    obj = read_checkpoint(tmp_path / "last.pt")
    assert obj["rng"]["numpy"][1].dtype == np.uint32 and obj["best"]["score"] == 0.5


def as_numpy1(path: pathlib.Path) -> pathlib.Path:
    """Rewrite a checkpoint saved under numpy 2 as numpy 1.x writes it: ``numpy._core`` -> ``numpy.core``
    in the pickle's GLOBAL lines (newline-terminated at protocol 2, so lengths may change)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    assert any(b"numpy._core.multiarray" in data for name, data in entries if name.endswith("data.pkl"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data.replace(b"numpy._core.", b"numpy.core.") if name.endswith("data.pkl") else data)
    return path


def test_numpy1_checkpoint_loads_under_weights_only(tmp_path):
    import numpy as np

    path = tmp_path / "checkpoint-399.pth"
    sd = mae_training_checkpoint(path, best=np.float64(0.75), seen=np.arange(4, dtype=np.int64))
    obj = torch.load(path, weights_only=False)
    obj["epoch"] = np.int64(399)  # older trainers keep numpy scalars beside the tensors
    torch.save(obj, path)
    as_numpy1(path)
    found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    assert {"numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct"} <= set(found)
    obj = read_checkpoint(path)  # no trusting(): weights_only with the allow-list
    assert obj["epoch"] == 399 and obj["args"].best == 0.75 and obj["args"].seen.tolist() == [0, 1, 2, 3]
    enc = ViTEncoder(ARCH)
    assert load_encoder(enc, obj).format == "mae"
    assert all(torch.equal(v, sd[k]) for k, v in enc.state_dict().items())


def test_numpy1_names_do_not_open_the_door_to_code(tmp_path):
    import numpy as np

    marker = tmp_path / "payload-ran"
    path = tmp_path / "mixed.pth"
    torch.save({"best": np.float64(0.5), "model": {"x": Payload(marker)}}, path)
    as_numpy1(path)
    with pytest.raises(AbawError, match="holds io.open") as err:
        read_checkpoint(path)
    assert "numpy.core" not in str(err.value) and not marker.exists()  # only what is really refused
