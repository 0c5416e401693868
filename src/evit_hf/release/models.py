"""The config, model class and image processor each release target ships (no weights involved).

One place that says, for a target, which evit-hf classes its repo holds, so the converter, the stats counter
and the card generator agree: classifiers get the original evaluation preprocessing at the checkpoint's own
resolution (not only 224), segmenters their dataset's, SAM its encoder size, SR the default SR processor.
"""

from __future__ import annotations

from .catalog import ReleaseTarget


def default_config(target: ReleaseTarget):
    """The configuration of the released model (the variant's preset; ImageNet labels for classifiers)."""
    from ..models.efficientvit import EfficientViTSamConfig, EfficientViTSRConfig

    if target.family == "cls":
        from ..convert.original import classifier_config

        config = classifier_config(target.model)
        config.image_size = target.resolution
        return config
    if target.family == "seg":
        from ..models.efficientvit import EfficientViTConfig

        return EfficientViTConfig.from_preset(target.variant)
    if target.family == "sam":
        return EfficientViTSamConfig.from_preset(target.variant)
    return EfficientViTSRConfig.from_preset(target.variant)


def model_class(target: ReleaseTarget):
    from ..models import efficientvit as family

    return {
        "cls": family.EfficientViTForImageClassification,
        "seg": family.EfficientViTForSemanticSegmentation,
        "sam": family.EfficientViTSamModel,
        "sr": family.EfficientViTForImageSuperResolution,
    }[target.family]


def image_processor(target: ReleaseTarget):
    """The image processor saved with the target (needs transformers >= 5, as the processors do)."""
    from ..models import efficientvit as family

    if family.EfficientViTImageProcessor is None:
        raise RuntimeError("Hub releases need transformers >= 5 (the PIL-backend image processors).")
    if target.family == "cls":
        return family.EfficientViTImageProcessor.for_variant(target.model, resolution=target.resolution)
    if target.family == "seg":
        return family.EfficientViTSegImageProcessor.for_dataset(target.variant)
    if target.family == "sam":
        return family.EfficientViTSamImageProcessor.for_config(default_config(target))
    return family.EfficientViTSRImageProcessor()
