"""`abaw run` job placement: --gpus and --jobs read through an inherited CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

import pytest

from abawkit.devices import job_gpus, visible_gpus
from abawkit.errors import AbawError
from abawkit.run import local


def gpu_envs(slots):
    return [s.env.get("CUDA_VISIBLE_DEVICES") for s in slots]


def test_gpus_count_within_an_inherited_allotment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    slots = local.slots("0,1", 1)
    assert gpu_envs(slots) == ["4", "5"]  # main: "0", "1" (GPUs this job was not given)
    assert [s.device for s in slots] == ["cuda:4", "cuda:5"]
    with pytest.raises(AbawError, match=r"GPU 4 is not one of the 4 .*CUDA_VISIBLE_DEVICES=4,5,6,7"):
        local.slots("0,4", 1)


def test_jobs_spread_over_every_visible_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert gpu_envs(local.slots(None, 4)) == ["2", "3", "2", "3"]  # main: no GPU set, all on cuda:0


def test_without_inherited_list_gpus_are_the_device_files(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"):
        (tmp_path / name).touch()
    assert visible_gpus({}, tmp_path) == ["0", "1", "2"]
    assert job_gpus(None, 2, {}, tmp_path) == ["0", "1"]
    assert job_gpus("2,0", 1, {}, tmp_path) == ["2", "0"]  # no allotment: the machine's GPUs
    with pytest.raises(AbawError, match="GPU 5 is not one of the 3"):
        job_gpus("2,5", 1, {}, tmp_path)  # main: taken as given, a slot for a GPU that is not there
    empty = tmp_path / "empty"
    empty.mkdir()
    assert job_gpus(None, 3, {}, empty) == [None, None, None]  # CPU slots


def test_uuid_and_hidden_allotments():
    env = {"CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"}
    assert job_gpus("1", 1, env) == ["GPU-bb"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3,-1,4"}) == ["3"]  # CUDA ignores entries after -1
    assert job_gpus(None, 2, {"CUDA_VISIBLE_DEVICES": ""}) == [None, None]  # no GPU given: CPU slots
    with pytest.raises(AbawError, match="--gpus"):
        job_gpus("0", 1, {"CUDA_VISIBLE_DEVICES": ""})
