"""``ship_layout``: a written synthetic release rearranged into the shape the organisers' archives
unpack to (edition folder, nested crop roots, batch folders, AVI files, ABAW6 names)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import numpy as np

from abawkit.labels import TASKS
from abawkit.release.synth.spec import TEMPLATE_NAME, TEST_LIST_PREFIX, Source
from abawkit.video.media import iter_frames


SHIPPED_ANNOTATIONS = "6th ABAW Annotations"  # edition folder, with a space, as unpacked
SHIPPED_CHALLENGE = {"EXPR_Classification_Challenge": "EXPR_Recognition_Challenge"}  # ABAW6 name
SHIPPED_TEMPLATE = "CVPR_6th_ABAW_{}_test_set_sample.txt"
SHIPPED_TRACK = {"au": "AU", "expr": "Expr", "va": "VA"}


def write_avi(src: Path, dst: Path) -> None:
    """Re-encode an mp4 as AVI (MPEG-4 part 2 video + 16-bit PCM audio): same frames and samples count."""
    frames = list(iter_frames(src))  # [H, W, 3] RGB
    with av.open(str(src)) as box:
        fps, rate = box.streams.video[0].average_rate, box.streams.audio[0].rate
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for fr in box.decode(audio=0) for f in res.resample(fr)])
    with av.open(str(dst), "w", format="avi") as box:
        vs = box.add_stream("mpeg4", rate=fps, options={"qscale": "2"})
        vs.height, vs.width = frames[0].shape[:2]
        vs.pix_fmt = "yuv420p"
        aus = box.add_stream("pcm_s16le", rate=rate, layout="mono")
        for img in frames:
            box.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        box.mux(vs.encode())
        for i in range(0, len(audio), 1024):
            fr = av.AudioFrame.from_ndarray(audio[None, i:i + 1024], format="s16", layout="mono")
            fr.sample_rate, fr.pts = rate, i
            box.mux(aus.encode(fr))
        box.mux(aus.encode())


def ship_layout(out: Path, sources: list[Source]) -> dict[str, list[str]]:
    """Rearrange a tidy release under ``out`` into the as-shipped shape; returns {part: new folders}.

    - annotations under ``6th ABAW Annotations/`` (the EXPR folder under its ABAW6 name);
    - crops in two nested roots, ``cropped_aligned/cropped_aligned/`` and
      ``cropped_aligned/cropped_aligned_new_50_vids/`` (test videos and the last sources), one video
      also as a partial copy in the other root (the fuller folder must win);
    - raw videos in ``batch1/`` and ``batch2/`` (mp4) and ``new_vids/`` (AVI, upper-case extension);
    - the expression test list under its ABAW6 name and the templates at the root as
      ``CVPR_6th_ABAW_{AU,Expr,VA}_test_set_sample.txt``.
    """

    edition = out / SHIPPED_ANNOTATIONS
    edition.mkdir()
    for spec in TASKS.values():
        if (out / spec.challenge).is_dir():
            os.replace(out / spec.challenge, edition / SHIPPED_CHALLENGE.get(spec.challenge, spec.challenge))
    n = len(sources)
    late = {s.name for s in sources[n - max(1, n // 4):]} | {s.name for s in sources if any(p.role == "test" for p in s.people)}
    crops = out / "cropped_aligned"
    old, new = crops / "cropped_aligned", crops / "cropped_aligned_new_50_vids"
    old.mkdir()
    new.mkdir()
    people = [(p, s.name) for s in sources for p in s.people if p.has_crops]
    for p, src in people:
        os.replace(crops / p.name, (new if src in late else old) / p.name)
    first = next(p.name for p, src in people if src not in late)
    shutil.copytree(old / first, new / first)
    for img in sorted((new / first).glob("*.jpg"))[::2]:
        img.unlink()  # a partial duplicate: prep must take the fuller folder
    for k, src in enumerate(sources):
        mp4 = out / "videos" / f"{src.name}.mp4"
        if src.name in late and k % 2:
            (out / "new_vids").mkdir(exist_ok=True)
            write_avi(mp4, out / "new_vids" / f"{src.name}.AVI")
            mp4.unlink()
        else:
            dest = out / ("batch1" if k < n // 2 else "batch2")
            dest.mkdir(exist_ok=True)
            os.replace(mp4, dest / mp4.name)
    (out / "videos").rmdir()
    lists = out / "names_of_videos_in_each_test_set"
    os.replace(lists / f"{TEST_LIST_PREFIX['expr']}_test_set_release.txt",
              lists / "Expression_Recognition_Challenge_test_set_release.txt")
    for t, tag in SHIPPED_TRACK.items():
        os.replace(lists / TEMPLATE_NAME.format(t.upper()), out / SHIPPED_TEMPLATE.format(tag))
    return {"annotations": [str(edition)], "crops": [str(old), str(new)],
            "videos": [str(out / d) for d in ("batch1", "batch2", "new_vids") if (out / d).is_dir()]}
