"""What prep takes from a CE (C-EXPR-DB) release and from compound-labelled face lists.

A CE release is raw videos (``01.mp4``, ``02.mp4``, ...) with no labels, plus the organisers' frame list,
found by discovery as the track's template (``*_CE_test_set_example.txt``, ``layout.templates["ce"]``).
Its videos are the CE test videos: prep finds, tracks and aligns their faces as for any raw video.
The list is the truth: a video whose list names one frame more than it decodes to gets that frame in the
frame table too (no crop; it takes the nearest face frame's values). ``--compound`` lists add
train/val rows (``release/compound.py``). Reads the list and the compound lists; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from abawkit.errors import AbawError
from abawkit.formats import ce as ce_format
from abawkit.release.annotations import Annotations
from abawkit.release.compound import CompoundSet, frame_inputs, read_compound


def test_videos(templates: dict[str, Path]) -> dict[str, list[str]]:
    """``{"ce": videos of the frame list, in its order}`` when the release has a CE list, else ``{}``."""
    if "ce" not in templates:
        return {}
    return {"ce": list(ce_format.read_list(templates["ce"]))}


def fit_list(templates: dict[str, Path], n_frames: dict[str, int]) -> dict[str, int]:
    """Give every video of the CE list at least as many frames as the list names; returns {video: frames added}."""
    return grow_to_list(ce_format.read_list(templates["ce"]) if "ce" in templates else {}, n_frames)


def grow_to_list(listed: dict[str, np.ndarray], n_frames: dict[str, int]) -> dict[str, int]:
    """A frame list is the truth: a video it names past its last decoded frame gets those frames (in place in
    ``n_frames``; they take the nearest face frame's values); returns {video: frames added}."""
    added = {}
    for video, frames in listed.items():
        want = int(frames.max())
        if want > n_frames.get(video, 0):
            added[video] = want - n_frames.get(video, 0)
            n_frames[video] = want
    return added


def read_compounds(paths: tuple[str, ...], seed: int) -> list[CompoundSet]:
    """Each ``--compound`` list, tagged ``cmp1``, ``cmp2``, ... in the order given."""
    return [read_compound(p, f"cmp{k}", seed) for k, p in enumerate(paths, start=1)]


def add_compounds(sets: list[CompoundSet], names: list[str], src_of: dict, n_frames: dict[str, int], crops: dict,
                  anns: dict[str, Annotations]) -> list[str]:
    """Add the compound images as one-frame videos to prep's inputs (in place); returns the new names.

    Their CE labels join any CE annotations already read; a name that clashes with a release video is
    an error rather than a silent overwrite."""
    if not sets:
        return names
    n_c, crops_c, ann_c = frame_inputs(sets)
    clash = sorted(set(n_c) & set(n_frames))
    if clash:
        raise AbawError(f"compound image {clash[0]} has the name of a release video; rename the list's images")
    n_frames.update(n_c)
    src_of.update(dict.fromkeys(n_c))  # no media file: no audio, 30 fps in videos.parquet
    crops.update(crops_c)
    old = anns.get("ce")
    if old is not None and len(old.names):
        ann_c.names, ann_c.roles, ann_c.files = old.names + ann_c.names, old.roles + ann_c.roles, old.files + ann_c.files
        ann_c.lengths = np.concatenate([old.lengths, ann_c.lengths])
        ann_c.values = np.concatenate([old.values, ann_c.values])
    anns["ce"] = ann_c
    return sorted(names + list(n_c))


def compound_summary(sets: list[CompoundSet]) -> list[dict]:
    """Per list: images kept per split and images dropped per class (for prep's summary)."""
    return [{"list": str(s.list_file), "train": s.roles.count("train"), "val": s.roles.count("val"),
             "dropped": dict(s.dropped)} for s in sets]
