"""The original's automatic mask generator on an evit-hf model's weights: `original_mask_generator`.

Owns building mit-han-lab's `EfficientViTSamAutomaticMaskGenerator` (segment-anything's generator with the
EfficientViT-SAM predictor, as shipped in the `efficientsam` package) around the weights of an
`EfficientViTSamModel`, for the benchmark (`evit-hf bench sam --everything`) and the tests that hold our
generator to the original's masks. Two builds:

- `variant="sam-l0"` (a released architecture): the original model of that variant (`build_original`), every
  weight copied from ours through the converter's key rules run backwards;
- no variant (any configuration, e.g. a small trained test model): our image encoder (proven equal to the
  original's) with the original prompt encoder and mask decoder (Meta's modules) built at the model's sizes.

The original pipeline imports torchvision, which cannot be installed beside the CPU torch wheel: its
preprocessing transform is replaced by the EfficientViT-SAM image processor (the same resize, normalisation
and padding, tested equal) and its two box ops (`batched_nms` with one category, `box_area`) by pure-torch
ones with torchvision's semantics. Everything else (decoding, filters, RLE, NMS order) is the original code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .original import OriginalUnavailable, build_original
from .packages import REFERENCES_ENV, use_reference_packages

_SAM_EPS = 1e-6  # the original zoo's norm eps for SAM (also its mask decoder's LayerNorms)


def _efficientsam(module: str):
    use_reference_packages()
    try:
        return importlib.import_module(f"efficientsam.{module}")
    except ImportError as err:
        raise OriginalUnavailable(f"the original generator needs `pip install --no-deps --target DIR efficientsam` "
                                  f"and ${REFERENCES_ENV}=DIR (`make test` installs it in .references)") from err


def _copy_weights(target: nn.Module, ours: dict[str, torch.Tensor], rename: Callable, prefix: str = "") -> None:
    """Load `target` (original layout) from our state dict, each original key renamed by our converter's rule."""
    theirs = {prefix + key: value for key, value in target.state_dict().items()}
    state = {}
    for key in theirs:
        ours_key = rename(key, theirs)
        if ours_key is None or ours_key not in ours:
            raise KeyError(f"no evit-hf weight for the original's {key!r} (converter rule: {ours_key!r})")
        state[key.removeprefix(prefix)] = ours[ours_key]
    target.load_state_dict(state)


def _meta_modules(config) -> tuple[nn.Module, nn.Module]:
    """Meta's prompt encoder and mask decoder at the sizes of an `EfficientViTSamConfig`."""
    modeling = _efficientsam("segment_anything.modeling")
    prompt, decoder = config.prompt_encoder_config, config.mask_decoder_config
    side = prompt.image_size // prompt.patch_size
    prompt_encoder = modeling.PromptEncoder(
        embed_dim=prompt.hidden_size, image_embedding_size=(side, side),
        input_image_size=(prompt.image_size, prompt.image_size), mask_in_chans=prompt.mask_input_channels,
    )
    transformer = modeling.TwoWayTransformer(
        depth=decoder.num_hidden_layers, embedding_dim=decoder.hidden_size, mlp_dim=decoder.mlp_dim,
        num_heads=decoder.num_attention_heads, attention_downsample_rate=decoder.attention_downsample_rate,
    )
    mask_decoder = modeling.MaskDecoder(
        transformer_dim=decoder.hidden_size, transformer=transformer,
        num_multimask_outputs=decoder.num_multimask_outputs, iou_head_depth=decoder.iou_head_depth,
        iou_head_hidden_dim=decoder.iou_head_hidden_dim,
    )
    return prompt_encoder, mask_decoder


class SamEncoder(nn.Module):
    """An EfficientViT-SAM model's image encoder as a module of pixels (`get_image_embeddings`): the original's
    `image_encoder` interface."""

    def __init__(self, sam_model: nn.Module) -> None:
        super().__init__()
        self.sam = sam_model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.sam.get_image_embeddings(pixel_values)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """torchvision's `batched_nms` where every box has the same category (how segment-anything calls it)."""
    from ..predict.masks import box_nms

    if idxs.numel() and not bool((idxs == idxs[0]).all()):
        raise NotImplementedError("only one category")
    return box_nms(boxes, scores, iou_threshold)


def original_model(model: nn.Module, processor, variant: str | None = None) -> nn.Module:
    """The original `EfficientViTSam` holding `model`'s weights (module docstring), its preprocessing done by
    `processor`."""
    from ..convert.sam import meta_sam_key, original_sam_key

    sam_module = _efficientsam("models.efficientvit.sam")
    ours = model.state_dict()
    if variant is not None:
        original, _ = build_original(variant)
        _copy_weights(original, ours, original_sam_key)
    else:
        from ..reference.original import _inert_transforms

        config = model.config
        prompt_encoder, mask_decoder = _meta_modules(config)
        _copy_weights(prompt_encoder, ours, meta_sam_key, "prompt_encoder.")
        _copy_weights(mask_decoder, ours, meta_sam_key, "mask_decoder.")
        with _inert_transforms(sam_module):
            original = sam_module.EfficientViTSam(
                SamEncoder(model), prompt_encoder, mask_decoder,
                image_size=(config.prompt_encoder_config.image_size, config.vision_config.image_size),
            )
        for module in (original.prompt_encoder, original.mask_decoder):
            for norm in module.modules():
                if isinstance(norm, nn.LayerNorm):
                    norm.eps = _SAM_EPS
    original.transform = lambda image: processor(images=image, return_tensors="pt")["pixel_values"][0]
    return original.eval()


def original_mask_generator(model: nn.Module, processor, variant: str | None = None, **options):
    """mit-han-lab's `EfficientViTSamAutomaticMaskGenerator(original_model(...), **options)`; call its
    `generate(image)` with an (H, W, 3) uint8 array. Raises `OriginalUnavailable` without `efficientsam`."""
    generator_module = _efficientsam("segment_anything.automatic_mask_generator")
    from ..predict.masks import box_area

    generator_module.batched_nms, generator_module.box_area = _batched_nms, box_area
    sam_module = _efficientsam("models.efficientvit.sam")
    return sam_module.EfficientViTSamAutomaticMaskGenerator(original_model(model, processor, variant), **options)


def as_array(image) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array of a PIL image (what the original generator takes)."""
    return np.asarray(image.convert("RGB"))


__all__ = ["SamEncoder", "as_array", "original_mask_generator", "original_model"]
