"""Models for training with a given label set: fresh from a preset, or a checkpoint with a new head."""

from __future__ import annotations

from transformers import PreTrainedModel


def build_labelled_model(
    model_class: type[PreTrainedModel],
    id2label: dict[int, str] | None,
    *,
    preset: str | None,
    default_preset: str,
    model_name_or_path: str | None,
) -> PreTrainedModel:
    """`model_class` for the classes of `id2label` (None: keep the checkpoint's own labels).

    Without a checkpoint the architecture is `preset` (or `default_preset`) with fresh weights. With one, the
    configuration comes from `preset` when given (e.g. ImageNet weights under a segmentation head) or from
    the checkpoint, and modules whose weights are missing or of another size (a head with another number of
    classes) are initialised afresh; the run says which.
    """
    from ..models.efficientvit import EfficientViTConfig

    labels = {} if id2label is None else {
        "num_labels": len(id2label), "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
    if model_name_or_path is None:
        if id2label is None:
            raise ValueError("Cannot tell the number of classes: pass --num_labels (or --id2label_file for "
                             "segmentation, or put an id2label.json beside the data).")
        return model_class(EfficientViTConfig.from_preset(preset or default_preset, **labels))
    if preset:
        config = EfficientViTConfig.from_preset(preset, **labels)
    else:
        config = EfficientViTConfig.from_pretrained(model_name_or_path, **labels)
    model, info = model_class.from_pretrained(
        model_name_or_path, config=config, ignore_mismatched_sizes=True, output_loading_info=True)
    changed = [*info["missing_keys"], *(key for key, *_ in info["mismatched_keys"])]
    fresh = sorted({key.rsplit(".", 1)[0] for key in changed})
    if fresh:
        shown = ", ".join(fresh[:8]) + (" ..." if len(fresh) > 8 else "")
        print(f"Loaded {model_name_or_path} for {config.num_labels} classes; newly initialised (to be trained): "
              f"{shown}", flush=True)
    return model


__all__ = ["build_labelled_model"]
