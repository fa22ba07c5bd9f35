"""Which device a stage runs on: one rule (``devices.resolve_device``) for every stage, and ``--gpus``
checked against the GPUs there are. CUDA is simulated by patching ``torch.cuda`` (no GPU needed)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from abawkit import distributed
from abawkit.cli import app
from abawkit.devices import job_gpus, resolve_device
from abawkit.errors import AbawError


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n)``: torch sees n CUDA devices from now on."""
    def see(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    return see


def devfiles(tmp_path, n: int):
    for k in range(n):
        (tmp_path / f"nvidia{k}").touch()
    (tmp_path / "nvidiactl").touch()
    return tmp_path


def test_gpus_beyond_the_machines_are_refused_without_an_inherited_list(tmp_path):
    """main: `--gpus 0,1,2,3` on a 2-GPU box gave slots for GPUs 2 and 3 (nothing inherited to check against)."""
    dev = devfiles(tmp_path, 2)
    with pytest.raises(AbawError, match=r"--gpus 0,1,2,3: GPU 2 is not one of the 2 .*no CUDA_VISIBLE_DEVICES"):
        job_gpus("0,1,2,3", 1, {}, dev)
    assert job_gpus("1,0,1", 1, {}, dev) == ["1", "0", "1"]


def test_gpus_beyond_an_inherited_list_are_refused():
    with pytest.raises(AbawError, match=r"GPU 2 is not one of the 2 .*CUDA_VISIBLE_DEVICES=4,5"):
        job_gpus("0,2", 1, {"CUDA_VISIBLE_DEVICES": "4,5"})


def test_resolve_device_rules(gpus):
    env: dict[str, str] = {}
    gpus(2)
    assert resolve_device("auto", environ=env) == torch.device("cuda", 0)
    assert resolve_device("cuda", local_rank=1, environ=env) == torch.device("cuda", 1)
    assert resolve_device("cuda:1", environ=env) == torch.device("cuda", 1)
    assert resolve_device("cpu", environ=env) == torch.device("cpu")
    with pytest.raises(AbawError, match=r"device cuda:2: torch sees 2 CUDA GPUs, so cuda:2 is not there"):
        resolve_device("cuda:2", environ=env)
    with pytest.raises(AbawError, match=r"GPU 3 \(LOCAL_RANK 3\)"):  # torchrun with more ranks than GPUs
        resolve_device("auto", local_rank=3, environ=env)
    with pytest.raises(AbawError, match="device must be auto, cpu, cuda or cuda:N, got 'gpu'"):
        resolve_device("gpu", environ=env)
    gpus(0)
    assert resolve_device("auto", environ=env) == torch.device("cpu")
    assert resolve_device("auto", environ={"CUDA_VISIBLE_DEVICES": ""}) == torch.device("cpu")  # no GPU given
    with pytest.raises(AbawError, match="device cuda: no CUDA GPU is visible to torch"):
        resolve_device("cuda", environ=env)


def test_a_gpu_slot_that_sees_no_gpu_is_an_error_not_a_cpu_run(gpus):
    """`abaw run` gave the job CUDA_VISIBLE_DEVICES=2 (status: cuda:2) but CUDA sees nothing: main ran on the CPU."""
    gpus(0)
    with pytest.raises(AbawError, match=r"device auto: CUDA_VISIBLE_DEVICES=2 names a GPU but no CUDA GPU"):
        resolve_device("auto", environ={"CUDA_VISIBLE_DEVICES": "2"})


def test_every_stage_refuses_cuda_without_a_gpu(gpus, monkeypatch):
    """Training and extraction stages (distributed.setup), prep's and predict's detector, predict:
    main ran the first two on the CPU without a word."""
    from abawkit.stages import predict
    from abawkit.video.media import FaceDetector

    gpus(0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(AbawError, match="device cuda: no CUDA GPU"):
        distributed.setup("cuda")
    with pytest.raises(AbawError, match="device cuda: no CUDA GPU"):
        FaceDetector("mtcnn", device="cuda")
    with pytest.raises(AbawError, match="device cuda: no CUDA GPU"):
        predict.check(predict.PredictConfig(device="cuda"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(AbawError, match="device auto: CUDA_VISIBLE_DEVICES=2"):
        distributed.setup("auto")


def test_a_stage_told_cuda_without_a_gpu_exits_2_in_one_line(gpus, monkeypatch, tmp_path):
    gpus(0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = CliRunner().invoke(app, ["pretrain", "-w", str(tmp_path / "w"), "--set", "train.device=cuda"])
    assert result.exit_code == 2, result.output
    assert "device cuda: no CUDA GPU is visible to torch" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
