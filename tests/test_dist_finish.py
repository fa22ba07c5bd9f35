"""The end of a multi-GPU stage, on 2 gloo ranks: a configurable process-group timeout, and final
predictions shared out over the ranks instead of left to rank 0 while the others wait."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

WAIT_S = 60  # bounded waits on events: a broken implementation fails here instead of hanging


def _join_group(rank: int, port: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shares_cover_every_item_once(monkeypatch):
    from abawkit import distributed

    for world in (1, 2, 3, 8):
        parts = []
        for rank in range(world):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", str(world))
            parts.append(range(10)[distributed.shard(10)])
        assert [i for p in parts for i in p] == list(range(10)) and max(map(len, parts)) - min(map(len, parts)) <= 1
    x = np.arange(6.0).reshape(3, 2)
    assert distributed.gather_concat(x) is x  # alone: nothing to gather


# ----------------------------------------------------------------------------- the timeout key
def _timeout_rank(rank: int, port: int, out: str, gave_up, started) -> None:
    _join_group(rank, port)
    import torch.distributed as dist

    from abawkit import distributed

    # the 1.8 s also bounds the rendezvous: start it only once both ranks have imported torch (seconds apart on
    # a loaded machine, which failed the test with "1/2 clients joined")
    started.wait(WAIT_S)
    distributed.setup("cpu", timeout_min=0.03)  # 1.8 s
    if rank == 0:  # the slow rank: it reaches no collective before rank 1 has given up waiting
        assert gave_up.wait(WAIT_S)
        return
    t0 = time.monotonic()
    try:
        dist.barrier()
        result = {"raised": False}
    except Exception as exc:  # noqa: BLE001 - gloo reports the timeout as a RuntimeError subclass
        result = {"raised": True, "error": type(exc).__name__}
    result["waited_s"] = time.monotonic() - t0
    with open(f"{out}/rank1.json", "w") as f:
        json.dump(result, f)
    gave_up.set()


def test_process_group_timeout_is_the_configured_one(tmp_path):
    from abawkit import distributed
    from abawkit.engine import TrainConfig

    assert distributed.DEFAULT_TIMEOUT_MIN >= 60 and TrainConfig().dist_timeout_min == 0  # 0 = that default
    ctx = mp.get_context("spawn")
    gave_up, started = ctx.Event(), ctx.Barrier(2)
    mp.spawn(_timeout_rank, args=(free_port(), str(tmp_path), gave_up, started), nprocs=2, join=True)
    r = json.loads((tmp_path / "rank1.json").read_text())
    assert r["raised"] and r["waited_s"] < 60, r  # the group's timeout, not gloo's 30 min


# ----------------------------------------------------------------------------- sharded final predictions
def _finetune_rank(rank: int, port: int, work: str, out: str, events) -> None:
    """finetune.run on one rank; rank 0's final predictions cannot end before rank 1 did its share."""
    _join_group(rank, port)
    from abawkit import engine
    from abawkit.stages import finetune

    fit, predict, state = engine.fit, finetune.predict, {"fit_done": False, "calls": []}

    def fit_then_mark(*a, **k):
        res = fit(*a, **k)
        state["fit_done"] = True
        return res

    def slow_predict(model, loader, *a, **k):
        n = len(loader.dataset)
        if not state["fit_done"]:  # rank 0's per-epoch validation
            return predict(model, loader, *a, **k)
        k_th = len(state["calls"])
        state["calls"].append(n)
        if rank == 0:  # the slow rank: waits for rank 1's k-th share of the final predictions
            assert events[k_th].wait(WAIT_S), "rank 1 never predicted its share"
        values = predict(model, loader, *a, **k)
        if rank == 1:
            events[k_th].set()
        return values

    engine.fit, finetune.predict = fit_then_mark, slow_predict
    cfg = finetune.FinetuneConfig(
        task="va", init="scratch", model=finetune.FrameModelConfig(img_size=32, patch=8),
        data=finetune.FinetuneData(eval_batch=16),
        train=engine.TrainConfig(max_steps=2, batch_size=8, device="cpu", log_every=1))
    finetune.run(work, cfg)
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(state["calls"], f)
    from abawkit import distributed

    distributed.cleanup()


@pytest.mark.slow  # two spawned ranks fine-tune and predict: ~50 s on 2 shared cores
def test_final_predictions_are_shared_over_ranks_when_rank0_is_slow(prep_workspace, tmp_path):
    from abawkit.data.faces import FaceCrops, eval_loader
    from abawkit.data.tables import fold_videos, load_prep
    from abawkit.models.checkpoints import load_frame_model
    from abawkit.predictions import read_predictions
    from abawkit.inference.frame import predict_frames as predict

    work = tmp_path / "work"
    shutil.copytree(prep_workspace, work)
    events = [mp.get_context("spawn").Event() for _ in range(2)]  # one per split (val, test)
    mp.spawn(_finetune_rank, args=(free_port(), str(work), str(tmp_path), events), nprocs=2, join=True)
    calls = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    d = work / "finetune" / "va" / "fold0"
    prep = load_prep(work)
    fv = fold_videos(prep, "va", 0)
    sizes = []
    for split, videos in (("val", fv.val), ("test", fv.test)):
        rows = prep.frames[prep.frames["video"].isin(videos) & prep.frames["crop"].notna()]
        sizes.append(len(rows))
        got = read_predictions(d / f"pred_{split}.parquet", expect_task="va")
        model, _ = load_frame_model(d / "best.pt")
        want = predict(model, eval_loader(FaceCrops(list(rows["crop"]), 32, False), 16), "va", torch.device("cpu"), False)
        assert len(got.df) == len(rows)
        np.testing.assert_allclose(got.values(), want, atol=1e-5)  # gathered in order
    assert [a + b for a, b in zip(*calls)] == sizes and all(abs(a - b) <= 1 for a, b in zip(*calls))  # halves
