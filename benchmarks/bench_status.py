"""``abaw status`` on a paper-size workspace: cold (hash and listing caches empty) and warm.

Builds (or reuses, ``--root`` / ``$ABAW_BENCH_STATUS``) a fake finished workspace: the plan of recipe
``abaw5`` for 3 tasks x 6 folds (prep, pretrain, 18 fine-tunings, 18 vision stores, audio stores, 18 TMFs,
ensembles, smoothing, submissions), a release of ``--crops`` empty crop files in ``--folders`` folders
(``cropped_aligned/<video>/NNNNN.jpg``) with one label file per video, on local disk, and each stage's
manifest with the identity the stages record (checkpoints are ``--ckpt-mb`` MB files of random bytes,
not 330 MB ViT-B weights: a cold status hashes each once). Then runs ``abaw status`` in a subprocess: once
with empty caches (cold), then again (warm), and prints both times and their ratio.

The page cache cannot be dropped without root: "cold" is abawkit's caches only (the folders' inodes may
be in the kernel's memory from building them). Checks free inodes (``df -i``) first and scales the
release down (printing the scale) when there are not enough.
Run: ``.venv/bin/python benchmarks/bench_status.py [--root DIR] [--crops 2800000 --folders 3000]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

from abawkit.io import write_json
from abawkit.run import plan as pl
from abawkit.run.build import RunConfig, RunInputs, build
from abawkit.workspace import identity as ident

TASK_DIRS = {"va": "VA_Estimation_Challenge", "expr": "EXPR_Recognition_Challenge", "au": "AU_Detection_Challenge"}


def _make_folder(args: tuple[str, int]) -> None:
    folder, n = args
    os.makedirs(folder, exist_ok=True)
    for i in range(1, n + 1):
        os.close(os.open(os.path.join(folder, f"{i:05d}.jpg"), os.O_CREAT | os.O_WRONLY, 0o644))


def make_release(release: Path, crops: int, folders: int) -> None:
    """Empty crops, ``crops // folders`` per video folder; one ~30 KB label file per video and task."""
    per = crops // folders
    jobs = [(str(release / "cropped_aligned" / f"video{v:04d}"), per) for v in range(folders)]
    t0 = time.time()
    with Pool(2) as pool:
        for k, _ in enumerate(pool.imap_unordered(_make_folder, jobs, chunksize=20)):
            if k % 500 == 0:
                print(f"  release: {k}/{folders} folders ({time.time() - t0:.0f} s)", flush=True)
    rows = "\n".join(f"{(i % 200) / 200:.3f},{(i % 70) / 70:.3f}" for i in range(per)) + "\n"
    for t, d in TASK_DIRS.items():
        for v in range(folders // 5):  # a fifth of the videos per task and split, as in the release
            for split in ("Train_Set", "Validation_Set"):
                p = release / d / split / f"video{v:04d}.txt"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("valence,arousal\n" + rows)


def _inputs(job: pl.Job, workdir: Path, release: Path, ckpts: dict[str, Path],
            stages: dict[str, str]) -> dict[str, ident.Input]:
    """What each stage declares (see stages/*.py): its upstream stages, the release, the checkpoints it reads."""
    found = {stages[d]: ident.upstream(stages[d]) for d in job.deps if stages.get(d)}
    if job.stage == "prep":
        found["release"] = ident.data(release)
    if job.stage == "finetune":
        found["init"] = ident.checkpoint(workdir / "pretrain" / "checkpoint.pt")
    if job.stage == "extract":
        ft = job.deps[0] if job.deps and job.deps[0].startswith("finetune/") else ""
        model = job.id.split("/")[-1]
        if ft or model in ckpts:
            found["checkpoint"] = ident.checkpoint(workdir / ft / "best.pt" if ft else ckpts[model])
    return found


def make_workspace(workdir: Path, release: Path, ckpt_mb: int) -> list[pl.Job]:
    """The plan's every stage finished: manifests with identities, the run's record with exit 0."""
    audio_dir = workdir.parent / "audio"
    ckpts = {m: audio_dir / m for m in ("hubert", "wav2vec2", "wavlm", "whisper", "vggish")}
    for d in ckpts.values():
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.safetensors").write_bytes(os.urandom(ckpt_mb << 20))
    jobs = build(RunConfig(), RunInputs(workdir, "abaw5", release, audio={m: str(p) for m, p in ckpts.items()}))
    stages = {j.id: pl.stage_of(j) for j in jobs}
    record = {}
    for job in jobs:
        name = stages[job.id]
        if job.stage in ("pretrain", "finetune"):
            (workdir / name).mkdir(parents=True, exist_ok=True)
            (workdir / name / ("checkpoint.pt" if job.stage == "pretrain" else "best.pt")).write_bytes(
                os.urandom(ckpt_mb << 20))
        marker = pl.marker_path(workdir, job)
        marker.parent.mkdir(parents=True, exist_ok=True)
        if name:
            recs = ident.resolve_all(workdir, _inputs(job, workdir, release, ckpts, stages))
            kind = ident.default_kind(name)
            write_json(marker, {"stage": name, "status": "done", "config_hash": "0" * 16, "kind": kind, "version": 1,
                                "identity": ident.identity(kind, 1, "0" * 16, recs), "inputs": recs,
                                "declared": list(recs), "outputs": {}, "metrics": {}})
        else:
            marker.write_text("")
        record[job.id] = {"state": "done", "rc": 0, **pl.identity(job), "wall_s": 1.0}
    pl.save_plan(workdir, jobs)
    pl.write_record(workdir, record)
    return jobs


def status(workdir: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds (user + system), output) of one ``abaw status``: the CPU seconds do not
    grow with the machine's other load."""
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    res = subprocess.run([sys.executable, "-m", "abawkit.cli", "status", "-w", str(workdir)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    took, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"abaw status failed:\n{res.stdout}")
    return took, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), res.stdout


def scale(crops: int, folders: int, root: Path) -> tuple[int, int]:
    """Scale the release down to the free inodes (``df -i``: ``df --output=iavail``), keeping a 10% margin."""
    free = int(subprocess.run(["df", "--output=iavail", str(root)], stdout=subprocess.PIPE, text=True,
                              check=True).stdout.split()[-1])
    print(f"df -i {root}: {free} inodes free")
    if free > 1.1 * (crops + folders * 2):
        return crops, folders
    f = free / (1.1 * (crops + folders * 2))
    print(f"not enough inodes: the release is scaled by {f:.3f}")
    return int(crops * f), max(1, int(folders * f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.environ.get("ABAW_BENCH_STATUS", "/tmp/abaw-bench-status"))
    ap.add_argument("--crops", type=int, default=2_800_000)
    ap.add_argument("--folders", type=int, default=3000)
    ap.add_argument("--ckpt-mb", type=int, default=16)
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    release, workdir = root / "release", root / "ws"
    if not (release / ".complete").exists():
        crops, folders = scale(args.crops, args.folders, root)
        print(f"building a release of {crops} crops in {folders} folders under {release}", flush=True)
        shutil.rmtree(release, ignore_errors=True)
        make_release(release, crops, folders)
        (release / ".complete").write_text(f"{crops} {folders}\n")
    crops, folders = map(int, (release / ".complete").read_text().split())
    cache = root / "cache"
    env = {**os.environ, "ABAW_HASH_CACHE": str(cache / "sha256"), "ABAW_LISTING_CACHE": str(cache / "listings"),
           "COLUMNS": "200"}
    os.environ.update({k: env[k] for k in ("ABAW_HASH_CACHE", "ABAW_LISTING_CACHE")})
    if not (workdir / "run" / "plan.json").exists():
        t0 = time.time()
        jobs = make_workspace(workdir, release, args.ckpt_mb)
        print(f"workspace: {len(jobs)} jobs written in {time.time() - t0:.0f} s", flush=True)
    time.sleep(2.5)  # past the listing cache's racy window (folders younger than 2 s are not cached)
    shutil.rmtree(cache, ignore_errors=True)
    cold, cold_cpu, _ = status(workdir, env)
    warm, warm_cpu, out = status(workdir, env)
    print(out.splitlines()[-1] if out.strip() else "")
    print(f"release: {crops} crops in {folders} folders; plan: {len(pl.load_plan(workdir))} jobs; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"abaw status cold (caches empty): {cold:.2f} s wall, {cold_cpu:.2f} s CPU")
    print(f"abaw status warm:                {warm:.2f} s wall, {warm_cpu:.2f} s CPU")
    print(f"cold / warm: {cold / warm:.1f}x wall, {cold_cpu / warm_cpu:.1f}x CPU")


if __name__ == "__main__":
    main()
