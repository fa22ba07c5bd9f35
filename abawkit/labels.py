"""Task definitions: label names (order matters), invalid values, challenge folders, metrics.

Everything that knows "AU has 12 columns and -1 means unannotated" reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from abawkit.errors import AbawError

AU_NAMES = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")
EXPR_NAMES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
VA_NAMES = ("valence", "arousal")


@dataclass(frozen=True)
class TaskSpec:
    """One ABAW task.

    ``label_columns`` are the columns of the frame table that hold this task's labels;
    ``pred_columns`` are the columns of a prediction file (probabilities or values).
    """

    name: str  # "au" | "expr" | "va"
    kind: str  # "multilabel" | "multiclass" | "regression"
    names: tuple[str, ...]  # annotation header / class names, in official order
    invalid: float  # value marking an unannotated frame
    challenge: str  # folder name in the official release
    aliases: tuple[str, ...]  # older folder names accepted for the same task
    metric: str  # human name of the official metric

    @property
    def label_columns(self) -> tuple[str, ...]:
        return ("EXPR",) if self.kind == "multiclass" else self.names

    @property
    def pred_columns(self) -> tuple[str, ...]:
        return self.names

    @property
    def n_outputs(self) -> int:
        return len(self.names)


TASKS: dict[str, TaskSpec] = {
    "au": TaskSpec("au", "multilabel", AU_NAMES, -1, "AU_Detection_Challenge", ("AU_Set",), "mean F1"),
    "expr": TaskSpec(
        "expr",
        "multiclass",
        EXPR_NAMES,
        -1,
        "EXPR_Classification_Challenge",
        ("EXPR_Recognition_Challenge", "EXPR_Set"),
        "macro F1",
    ),
    "va": TaskSpec("va", "regression", VA_NAMES, -5, "VA_Estimation_Challenge", ("VA_Set",), "mean CCC"),
}


def task(name: str | TaskSpec) -> TaskSpec:
    """Look a task up by name (case-insensitive); unknown names are a user error.

    Resolve a task once where it enters (a command's ``--task``, a config's ``task``) and pass the
    ``TaskSpec`` down; a spec given here is returned as it is, so library functions take either."""
    if isinstance(name, TaskSpec):
        return name
    key = name.lower()
    if key not in TASKS:
        raise AbawError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[key]


def task_for_folder(folder: str) -> TaskSpec | None:
    """Map a release folder name (current or older alias) to its task, or None if unknown."""
    for spec in TASKS.values():
        if folder == spec.challenge or folder in spec.aliases:
            return spec
    return None
