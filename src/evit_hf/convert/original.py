"""`from_original` / `from_timm`: original and timm checkpoints -> eval-mode evit-hf models.

Each released variant (`cls-b1`, `seg-l2-cityscapes`, `sam-xl1`, ... the names used by the parity
fixtures) is registered with a model builder and a key-renaming function; task modules add their own
variants with `register_variant`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..data import imagenet_id2label
from ..models.efficientvit import EfficientViTConfig, EfficientViTForImageClassification, EfficientViTModel
from .checkpoint import load_converted, unwrap_state_dict
from .rules import (
    ORIGINAL_CLS_HEAD,
    TIMM_CLS_HEAD,
    original_backbone_key,
    rename_prefix,
    timm_backbone_key,
)

Renamer = Callable[[str, Mapping[str, torch.Tensor]], str | None]


@dataclass(frozen=True)
class Variant:
    """A released original checkpoint: how to build our model and rename its keys."""

    name: str
    build_model: Callable[[], nn.Module]
    rename: Renamer
    description: str = ""
    build_processor: Callable[[], object] | None = None


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> None:
    VARIANTS[variant.name] = variant


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"Unknown variant {name!r}. Known variants: {', '.join(sorted(VARIANTS))}.")
    return VARIANTS[name]


def _original_classifier_key(key: str, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    if key.startswith("backbone."):
        has_stem = any(k.startswith("backbone.input_stem.") for k in state_dict)
        renamed = original_backbone_key(key.removeprefix("backbone."), has_stem)
        return None if renamed is None else "efficientvit.encoder." + renamed
    return rename_prefix(key, ORIGINAL_CLS_HEAD)


def _timm_classifier_key(key: str, state_dict: Mapping[str, torch.Tensor]) -> str | None:
    if key.startswith("head."):
        return rename_prefix(key, TIMM_CLS_HEAD)
    renamed = timm_backbone_key(key)
    return None if renamed is None else "efficientvit.encoder." + renamed


def classifier_config(preset: str) -> EfficientViTConfig:
    """An ImageNet-1k classifier configuration with the original's label names."""
    return EfficientViTConfig.from_preset(preset, id2label=imagenet_id2label())


def _classification_processor(preset: str):
    from ..models.efficientvit.image_processing_efficientvit import EfficientViTImageProcessor

    return EfficientViTImageProcessor.for_variant(preset)


for _preset in ("b0", "b1", "b2", "b3", "l1", "l2", "l3"):
    register_variant(
        Variant(
            name=f"cls-{_preset}",
            build_model=lambda p=_preset: EfficientViTForImageClassification(classifier_config(p)),
            rename=_original_classifier_key,
            description=f"EfficientViT-{_preset.upper()} ImageNet-1k classifier",
            build_processor=lambda p=_preset: _classification_processor(p),
        )
    )


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], rename: Renamer, source: str) -> dict:
    converted, unknown = {}, []
    for key, value in state_dict.items():
        new_key = rename(key, state_dict)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        shown = ", ".join(unknown[:10]) + (f", ... ({len(unknown) - 10} more)" if len(unknown) > 10 else "")
        raise ValueError(f"{len(unknown)} key(s) of the checkpoint are not in the {source} layout: {shown}")
    return converted


def _build_and_load(variant: Variant, state_dict: Mapping, rename: Renamer, layout: str) -> nn.Module:
    state_dict = unwrap_state_dict(state_dict)
    model = variant.build_model()
    converted = convert_state_dict(state_dict, rename, f"{layout} {variant.name}")
    return load_converted(model, converted, f"variant {variant.name!r}").eval()


def from_original(state_dict: Mapping, variant: str) -> nn.Module:
    """Convert an original mit-han-lab checkpoint (raw state dict or `{"state_dict": ...}`) of `variant`.

    Returns the eval-mode evit-hf model of the right class with the converted weights. Load the file with
    `evit_hf.convert.load_checkpoint` (safetensors or a `weights_only=True` pickle).
    """
    spec = get_variant(variant)
    return _build_and_load(spec, state_dict, spec.rename, "original")


def from_timm(state_dict: Mapping, variant: str) -> nn.Module:
    """Convert a timm `efficientvit_mit` classifier state dict (`cls-b0` ... `cls-l3`)."""
    spec = get_variant(variant)
    if not variant.startswith("cls-"):
        raise ValueError(f"timm only ports the classifiers (cls-*), not {variant!r}.")
    return _build_and_load(spec, state_dict, _timm_classifier_key, "timm")


def from_original_backbone(state_dict: Mapping, preset: str, **config_overrides) -> EfficientViTModel:
    """Convert a bare original backbone (`input_stem.*`/`stages.*` keys, as `efficientvit_backbone_b1()`
    or the `backbone.` part of any checkpoint) into an eval-mode `EfficientViTModel` of `preset`."""
    state_dict = unwrap_state_dict(state_dict)
    state_dict = {k.removeprefix("backbone."): v for k, v in state_dict.items()}
    has_stem = any(k.startswith("input_stem.") for k in state_dict)

    def rename(key: str, _: Mapping) -> str | None:
        renamed = original_backbone_key(key, has_stem)
        return None if renamed is None else "encoder." + renamed

    model = EfficientViTModel(EfficientViTConfig.from_preset(preset, **config_overrides))
    converted = convert_state_dict(state_dict, rename, f"original {preset} backbone")
    return load_converted(model, converted, f"preset {preset!r}").eval()
