"""The synthetic release's sizes, names and the look-up tables every part draws from: ``SynthSpec``,
``Person`` (one annotation name's labels and looks), ``Source`` (one media file and its people), the
official file names. Reads and writes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


TEST_LIST_PREFIX = {
    "au": "Action_Unit_Detection_Challenge",
    "expr": "Expression_Classification_Challenge",
    "va": "Valence_Arousal_Estimation_Challenge",
}
TEMPLATE_NAME = "CVPR_5th_ABAW_{}_test_set_example.txt"
ROLE_FOLDER = {"train": "Train_Set", "val": "Validation_Set"}

# Expression -> AUs that (usually) fire with it. Indices follow AU_NAMES.
EXPR_AUS = {
    "Neutral": (),
    "Anger": ("AU4", "AU7", "AU23", "AU24"),
    "Disgust": ("AU4", "AU10", "AU15", "AU25"),
    "Fear": ("AU1", "AU2", "AU4", "AU25", "AU26"),
    "Happiness": ("AU6", "AU12", "AU25"),
    "Sadness": ("AU1", "AU4", "AU15"),
    "Surprise": ("AU1", "AU2", "AU25", "AU26"),
    "Other": ("AU7", "AU10"),
}
EXPR_PRIOR = np.array([0.25, 0.09, 0.07, 0.07, 0.18, 0.12, 0.1, 0.12])  # Fear/Disgust/Anger rare
EXPR_VA = np.array([[0, 0], [-0.6, 0.7], [-0.6, 0.3], [-0.5, 0.75], [0.7, 0.45], [-0.6, -0.45],
                    [0.2, 0.8], [0.1, -0.3]], dtype=np.float32)
EXPR_F0 = np.array([140, 185, 120, 260, 220, 105, 300, 165], dtype=np.float32)  # Hz
EXPR_HARM = np.random.default_rng(12345).dirichlet(np.ones(5) * 0.7, size=8).astype(np.float32)  # timbre


@dataclass(frozen=True)
class SynthSpec:
    """Size and seed of a synthetic release."""

    videos: int = 24  # annotation names (a _left/_right pair counts twice)
    frames: int = 300  # frames per video
    size: int = 112  # crop side in pixels
    fps: int = 30
    audio_rate: int = 16000
    seed: int = 0


@dataclass
class Person:
    """Labels and appearance of one annotation name. Arrays are per frame."""

    name: str
    source: str
    role: str  # train | val | test
    tasks: tuple[str, ...]
    expr: np.ndarray  # [F] int 0..7 (true, before invalid runs)
    au: np.ndarray  # [F, 12] int 0/1
    va: np.ndarray  # [F, 2] float
    look: dict
    has_crops: bool = True
    missing: tuple[int, ...] = ()  # 1-based frames without a crop



@dataclass
class Source:
    """One media file and the people in it (one, or a _left/_right pair)."""

    name: str
    people: list[Person]
