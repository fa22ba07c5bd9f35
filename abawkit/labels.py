"""The track registry: every challenge track abawkit runs, as data.

A *head* is one group of outputs with one kind of target (``multilabel`` 0/1 per name, ``multiclass``
one class id, ``regression`` values in [-1, 1]); its kind decides its loss, activation, metric, final
decision and value rule (``heads.py`` holds those, per kind). A *track* (``TaskSpec``) is one or more
heads plus what the challenge adds: the release folder, the score (one head's metric, or the sum of
its heads' as P_MTL), the submission format and the synthetic release. AU, EXPR and VA are one-head
tracks; MTL (ABAW 7/11, s-Aff-Wild2) is VA + EXPR + AU heads on their own label columns; CE
(ABAW 6/7/9, C-EXPR-DB) is one 7-class head. A/H comes twice: ``ah`` (ABAW 10/11, one label per video)
and ``ah_frames`` (ABAW 8, one label per frame, on its own label column): same release, other model.

A track's outputs are its heads' outputs back to back (``slices``): MTL's 22 values are
valence, arousal, 8 expression probabilities, 12 AU probabilities. Its label columns are its heads'
columns back to back, in the frame table (``data/tables.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from abawkit.errors import AbawError

AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")
EXPR_NAMES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
VA_NAMES = ("valence", "arousal")
CE_NAMES = ("Fearfully_Surprised", "Happily_Surprised", "Sadly_Surprised", "Disgustedly_Surprised",
            "Angrily_Surprised", "Sadly_Fearful", "Sadly_Angry")
AH_NAMES = ("no_ah", "ah")  # BAH: ambivalence/hesitancy absent (0) or present (1)
EMI_NAMES = ("Admiration", "Amusement", "Determination", "Empathic Pain", "Excitement", "Joy")
KINDS = ("multilabel", "multiclass", "regression", "intensity")
METRICS = {"multilabel": "mean F1", "multiclass": "macro F1", "regression": "mean CCC", "intensity": "mean Pearson"}


@dataclass(frozen=True)
class Head:
    """One group of outputs of one kind.

    ``names`` are the outputs (AU names, class names, valence/arousal) in the official order;
    ``columns`` the frame-table columns holding its labels (one class-id column for multiclass);
    ``invalid`` the label value of an unannotated frame (masked out of every loss and metric).
    """

    name: str  # "au" | "expr" | "va" | "ce" | "ah" | "emi"
    kind: str  # one of KINDS (intensity: values in [0, 1], scored by Pearson correlation)
    names: tuple[str, ...]
    invalid: float
    columns: tuple[str, ...]

    @property
    def n_outputs(self) -> int:
        return len(self.names)

    @property
    def metric(self) -> str:
        return METRICS[self.kind]


AU_HEAD = Head("au", "multilabel", AU_NAMES, -1, AU_NAMES)
EXPR_HEAD = Head("expr", "multiclass", EXPR_NAMES, -1, ("EXPR",))
VA_HEAD = Head("va", "regression", VA_NAMES, -5, VA_NAMES)


@dataclass(frozen=True)
class TaskSpec:
    """One track: its heads and what its challenge adds.

    ``score`` is ``"mean"`` for a one-head track (its head's metric) or ``"sum"`` (P_MTL: the sum of
    the heads' metrics). ``format`` names the submission format (``submission.FORMATS``), ``synth``
    the synthetic release that stands in for it (``stages/synth.py``), ``release`` how prep finds its
    labels (``classic``: a challenge folder of per-video files; ``mtl``: s-Aff-Wild2's two annotation
    files; ``ce``: unlabelled videos plus the organisers' frame list).
    """

    name: str
    heads: tuple[Head, ...]
    challenge: str  # folder name in the official release
    aliases: tuple[str, ...] = ()  # older folder names accepted for the same track
    score: str = "mean"  # "mean": the one head's metric; "sum": the sum over heads (P_MTL)
    format: str = "frames"  # submission format key
    release: str = "classic"  # how prep reads its labels
    synth: str = "affwild2"  # synthetic release kind
    rare: tuple[str, ...] = ()  # rare labels the fold split balances
    level: str = "frame"  # "frame": a value per frame; "video": one value per video (A/H of ABAW 10/11, EMI)

    @property
    def kind(self) -> str:
        """The one head's kind, or ``"multitask"``."""
        return self.heads[0].kind if len(self.heads) == 1 else "multitask"

    @property
    def head(self) -> Head:
        if len(self.heads) != 1:
            raise AbawError(f"track {self.name} has {len(self.heads)} heads; use its heads one by one")
        return self.heads[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for h in self.heads for n in h.names)

    @property
    def invalid(self) -> float:
        return self.head.invalid

    @property
    def label_columns(self) -> tuple[str, ...]:
        return tuple(c for h in self.heads for c in h.columns)

    @property
    def pred_columns(self) -> tuple[str, ...]:
        return self.names

    @property
    def n_outputs(self) -> int:
        return sum(h.n_outputs for h in self.heads)

    @property
    def metric(self) -> str:
        if len(self.heads) == 1:
            return self.heads[0].metric
        return "P_MTL"  # the sum of the heads' metrics

    def slices(self) -> list[tuple[Head, slice, slice]]:
        """(head, its output columns, its label columns) in order."""
        out, o, c = [], 0, 0
        for h in self.heads:
            out.append((h, slice(o, o + h.n_outputs), slice(c, c + len(h.columns))))
            o, c = o + h.n_outputs, c + len(h.columns)
        return out


def _mtl_head(h: Head) -> Head:
    """A classic head on MTL's own label columns (``mtl_<column>``), so one release can hold both."""
    return Head(h.name, h.kind, h.names, h.invalid, tuple(f"mtl_{c}" for c in h.columns))


TASKS: dict[str, TaskSpec] = {
    "au": TaskSpec("au", (AU_HEAD,), "AU_Detection_Challenge", ("AU_Set",), rare=("AU15", "AU23", "AU24")),
    "expr": TaskSpec("expr", (EXPR_HEAD,), "EXPR_Classification_Challenge", ("EXPR_Recognition_Challenge", "EXPR_Set"),
                     rare=("Anger", "Disgust", "Fear")),
    "va": TaskSpec("va", (VA_HEAD,), "VA_Estimation_Challenge", ("VA_Set",)),
    "mtl": TaskSpec("mtl", tuple(_mtl_head(h) for h in (VA_HEAD, EXPR_HEAD, AU_HEAD)), "MTL_Challenge", score="sum",
                    format="mtl", release="mtl", synth="mtl", rare=("Anger", "Disgust", "Fear", "AU15", "AU23", "AU24")),
    "ce": TaskSpec("ce", (Head("ce", "multiclass", CE_NAMES, -1, ("CE",)),), "CE_Challenge", format="ce", release="ce",
                   synth="ce", rare=CE_NAMES),
    "ah": TaskSpec("ah", (Head("ah", "multiclass", AH_NAMES, -1, ("AH",)),), "AH_Challenge", format="ah", release="bah",
                   synth="ah", level="video"),
    "ah_frames": TaskSpec("ah_frames", (Head("ah", "multiclass", AH_NAMES, -1, ("AH_frame",)),), "AH_Frame_Challenge",
                          format="ah_frames", release="bah_frames", synth="ah"),
    "emi": TaskSpec("emi", (Head("emi", "intensity", EMI_NAMES, -1, tuple(f"emi_{n}" for n in EMI_NAMES)),),
                    "EMI_Challenge", format="emi", release="emi", synth="emi", level="video"),
}
CLASSIC = ("au", "expr", "va")  # the ABAW5 tracks: one Aff-Wild2 release, one frame table


def task(name: str | TaskSpec) -> TaskSpec:
    """Look a track up by name (case-insensitive); unknown names are a user error.

    Resolve a track once where it enters (a command's ``--task``, a config's ``task``) and pass the
    ``TaskSpec`` down; a spec given here is returned as it is, so library functions take either."""
    if isinstance(name, TaskSpec):
        return name
    key = name.lower()
    if key not in TASKS:
        raise AbawError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[key]


def head_track(spec: TaskSpec, head: Head) -> TaskSpec:
    """A one-head track of ``spec``'s ``head`` (itself for a one-head track): what the per-head tools
    (smoothing search, decisions) work on. Named ``<track>.<head>``."""
    if len(spec.heads) == 1:
        return spec
    return TaskSpec(f"{spec.name}.{head.name}", (head,), spec.challenge, format=spec.format, release=spec.release,
                    synth=spec.synth, level=spec.level)


def task_for_folder(folder: str) -> TaskSpec | None:
    """Map a release folder name (current or older alias) to its classic track, or None if unknown."""
    for spec in TASKS.values():
        if spec.release == "classic" and (folder == spec.challenge or folder in spec.aliases):
            return spec
    return None
