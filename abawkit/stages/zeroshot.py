"""``abaw zeroshot --task ce --expr-model best.pt``: CE predictions with no CE training labels.

A fine-tuned EXPR frame model (``finetune/expr/fold<N>/best.pt`` of any workspace) scores the 8 basic
expressions on every face crop of the CE videos; ``compound.zero_shot`` turns those probabilities into
the 7 compound scores by its documented rule. Reads ``prep`` (frames with crops) and the model
(by content); writes ``zeroshot/<task>/``: ``pred_test.parquet`` (and ``pred_val.parquet`` when the
workspace has labelled CE frames, e.g. a compound face folder, which also gives ``val_score``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from abawkit.console import console
from abawkit.data.tables import load_prep
from abawkit.errors import AbawError
from abawkit.labels import task
from abawkit.workspace import identity as ident
from abawkit.workspace import layout
from abawkit.workspace.stage import stage


@dataclass(frozen=True)
class ZeroShotConfig:
    seed: int = 0
    task: str = "ce"
    expr_model: str = ""  # a fine-tuned EXPR frame model (best.pt of `abaw finetune --task expr`)
    batch_size: int = 64
    device: str = "auto"


def run(workdir: Path, cfg: ZeroShotConfig, force: bool = False) -> dict:
    """Predict every split of the track that has frames; returns the stage metrics."""
    from abawkit.compound import zero_shot
    from abawkit.data.faces import FaceCrops, eval_loader, prep_rows, task_labels
    from abawkit.devices import resolve_device
    from abawkit.inference.frame import predict_frames
    from abawkit.metrics import score
    from abawkit.models.checkpoints import load_frame_model
    from abawkit.predictions import make_predictions, write_predictions

    spec = task(cfg.task)
    if spec.name != "ce":
        raise AbawError(f"zeroshot: the rule maps basic expressions to compound ones (--task ce), not {spec.name}")
    model_path = Path(cfg.expr_model)
    if not model_path.is_file():
        raise AbawError(f"zeroshot: --expr-model {model_path or '(none)'}: a fine-tuned EXPR model file is required")
    inputs = {"prep": ident.upstream(layout.PREP), "expr_model": ident.file(model_path)}
    with stage(workdir, layout.zeroshot(spec.name), cfg, seed=cfg.seed, force=force, inputs=inputs) as st:
        model, meta = load_frame_model(model_path)
        if meta.get("task") != "expr":
            raise AbawError(f"{model_path}: a {meta.get('task')} model; the zero-shot rule needs an EXPR model")
        device = resolve_device(cfg.device)
        model = model.to(device)
        frames = load_prep(workdir).frames
        for split in ("val", "test"):
            videos = frames.loc[frames[f"split_{spec.name}"] == split, "video"].unique()
            rows = prep_rows(frames, videos)
            if rows.empty:
                continue
            loader = eval_loader(FaceCrops(rows["crop"], model.arch.img_size, False), cfg.batch_size)
            probs = zero_shot(predict_frames(model, loader, "expr", device, device.type == "cuda"))  # [N, 7]
            pred = make_predictions(rows["video"], rows["frame"], probs, spec, split, 0, "zeroshot")
            write_predictions(st.add_output(f"pred_{split}.parquet"), pred)
            st.metrics[f"{split}_frames"] = int(len(rows))
            if split == "val":
                labels = task_labels(rows, spec)
                keep = labels[:, 0] >= 0
                st.metrics["val_score"] = score(spec, labels[keep], probs[keep])["score"] if keep.any() else None
        st.metrics.update(task=spec.name, expr_model=str(model_path), metric=spec.metric)
    val = st.metrics.get("val_score")
    console.print(f"zeroshot/{spec.name}: {st.metrics.get('test_frames', 0)} test frames"
                  + (f", val {spec.metric} {val:.4f}" if isinstance(val, float) else ""))
    return st.metrics



