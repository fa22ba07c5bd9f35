"""TMF temporal heads (transformer / tcn / gru) and modality dropout: gradients, padding, the stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from abawkit.cli import app
from abawkit.models.tmf import TEMPORAL, TMF, TMFArch


def arch(temporal: str, **kw) -> TMFArch:
    return TMFArch(**{"in_dim": 10, "n_outputs": 3, "d_model": 16, "layers": 3, "heads": 4, "max_len": 24,
                      "temporal": temporal, **kw})


@pytest.mark.parametrize("temporal", TEMPORAL)
def test_every_head_trains_and_ignores_padding(temporal):
    torch.manual_seed(0)
    model = TMF(arch(temporal, dropout=0.0))
    x, pad = torch.randn(2, 24, 10), torch.zeros(2, 24, dtype=torch.bool)
    pad[1, 15:] = True
    out = model(x, pad)
    assert out.shape == (2, 24, 3) and torch.isfinite(out).all()
    out[~pad].sum().backward()
    for name, p in model.named_parameters():  # real gradients are > 0.5 here; one a norm cancels is ~1e-7
        assert p.grad is not None, name
        assert p.grad.abs().max() > 1e-4, (name, p.grad.abs().max().item())
    model.eval()
    x2 = x.clone()
    x2[1, 15:] = 100.0  # garbage in the padding never reaches real frames
    assert torch.allclose(model(x, pad)[1, :15], model(x2, pad)[1, :15], atol=1e-5)


def test_tcn_receptive_field_grows_with_dilation():
    """Block i holds two convs of dilation 2**i: kernel 3, 2 blocks -> a frame sees 2*1 + 2*2 = 6 frames each side.

    The perturbation is a random vector, not a constant: ``in_norm`` (a LayerNorm over each frame's features)
    removes a constant shift, which would leave only rounding noise to measure.
    """
    torch.manual_seed(0)
    model = TMF(arch("tcn", dropout=0.0, layers=2)).eval()
    x = torch.randn(1, 24, 10)
    x2 = x.clone()
    x2[0, 12] += 3.0 * torch.randn(10)
    with torch.no_grad():
        diff = (model(x) - model(x2)).abs().amax(-1)[0]  # [24]: largest change per frame
    inside = torch.arange(24).sub(12).abs() <= 6
    assert diff[inside].min() > 1e-3, diff  # every frame within +-6 sees frame 12
    assert diff[~inside].max() < 1e-6, diff  # and no frame beyond: far below any real signal


def test_modality_dropout_drops_whole_feature_sets_in_training_only():
    torch.manual_seed(0)
    model = TMF(arch("tcn", modality_dropout=0.5, parts=(4, 6)))
    x = torch.randn(64, 5, 10) + 3.0
    out = model.drop_modalities(x)
    a, v = (out[..., :4] == 0).flatten(1).all(1), (out[..., 4:] == 0).flatten(1).all(1)
    assert 10 < a.sum() < 54 and 10 < v.sum() < 54 and not (a & v).any()  # each dropped often, never both
    kept = ~a
    assert torch.equal(out[kept][..., :4], x[kept][..., :4])
    assert torch.equal(model.eval().drop_modalities(x), x)
    with pytest.raises(ValueError, match="do not add up"):
        TMF(arch("gru", parts=(4, 5)))


def test_tmf_stage_with_tcn_gru_and_modality_dropout(tmp_path):
    from test_tmf import FAST, make_encoder, make_prep

    from abawkit.predictions import read_predictions

    runner = CliRunner()
    work = make_prep(tmp_path / "w")
    enc = make_encoder(tmp_path / "enc.pt")
    for args in (["extract", "vision", "--checkpoint", str(enc), "--set", "vision.workers=0"],
                 ["extract", "audio", "--model", "fbank"]):
        res = runner.invoke(app, [*args, "-w", str(work)])
        assert res.exit_code == 0, res.output
    for temporal in ("tcn", "gru"):
        res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "expr", "--features", "mae,fbank", *FAST,
                                  "--set", f"model.temporal={temporal!r}", "--set", "model.modality_dropout=0.3",
                                  "--set", f"tag={temporal!r}"])
        assert res.exit_code == 0, res.output
        pred = read_predictions(work / "tmf" / "expr" / f"fold0-{temporal}" / "pred_val.parquet")
        assert np.isfinite(pred.values()).all()
    res = runner.invoke(app, ["train", "tmf", "-w", str(work), "--task", "expr", "--set", "model.temporal='lstm'"])
    assert res.exit_code == 2 and "model.temporal must be one of" in res.output
