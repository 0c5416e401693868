"""The peer models evit-hf is measured against, as transformers builds them, with random weights.

Owns the peers' configurations and how each runs on pixels: SegFormer B0/B1/B2 (the official mit-b0/b1/b2
encoders and all-MLP decoder, 19 Cityscapes classes), SAM ViT-B (`SamModel(SamConfig())`: 768 wide, 12
layers, global attention at [2, 5, 8, 11]; its image encoder is what is timed) and the lightweight x2 Swin2SR
of the released `caidas/swin2SR-lightweight-x2-64` checkpoint (embed_dim 60, depths [6, 6, 6, 6], 6 heads,
window 8, MLP ratio 2, "pixelshuffledirect" upsampler). The segmentation, SAM, super-resolution and back-end
benchmarks all build their peers here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# The official SegFormer hyperparameters (mit-b0/b1/b2 encoders, all-MLP decoder).
SEGFORMER_CONFIGS: dict[str, dict] = {
    "segformer-b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "segformer-b1": {"hidden_sizes": [64, 128, 320, 512], "depths": [2, 2, 2, 2], "decoder_hidden_size": 256},
    "segformer-b2": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "decoder_hidden_size": 768},
}
_SEGFORMER_COMMON = {
    "num_attention_heads": [1, 2, 5, 8], "sr_ratios": [8, 4, 2, 1], "mlp_ratios": [4, 4, 4, 4], "num_labels": 19,
}
SWIN2SR_LIGHTWEIGHT_X2: dict = {
    "embed_dim": 60,
    "depths": [6, 6, 6, 6],
    "num_heads": [6, 6, 6, 6],
    "window_size": 8,
    "mlp_ratio": 2.0,
    "image_size": 64,
    "upsampler": "pixelshuffledirect",
    "upscale": 2,
    "img_range": 1.0,
    "resi_connection": "1conv",
}
SWIN2SR_NAME = "swin2sr-lightweight-x2"
SAM_VIT_B_NAME = "sam-vit-b"


def segformer_model(name: str) -> torch.nn.Module:
    """A random-weight transformers `SegformerForSemanticSegmentation` with the official B0/B1/B2 shapes."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    if name not in SEGFORMER_CONFIGS:
        raise ValueError(f"Unknown SegFormer size {name!r}; expected one of {sorted(SEGFORMER_CONFIGS)}.")
    config = SegformerConfig(**_SEGFORMER_COMMON, **SEGFORMER_CONFIGS[name])
    return SegformerForSemanticSegmentation(config).eval()


def swin2sr_model(upscale: int = 2) -> torch.nn.Module:
    """A random-weight transformers `Swin2SRForImageSuperResolution`, lightweight configuration, x`upscale`."""
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution

    return Swin2SRForImageSuperResolution(Swin2SRConfig(**{**SWIN2SR_LIGHTWEIGHT_X2, "upscale": upscale})).eval()


def sam_vit_b_model() -> torch.nn.Module:
    """A random-weight transformers `SamModel` with the default (ViT-B) configuration."""
    from transformers import SamConfig, SamModel

    return SamModel(SamConfig()).eval()


def peer_model(name: str) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor]]:
    """A peer by name (`segformer-b0/b1/b2`, `sam-vit-b`, `swin2sr-lightweight-x2`) and the call that runs it on
    pixels, returning its main output (segmentation logits, SAM image embeddings, the reconstruction)."""
    if name in SEGFORMER_CONFIGS:
        model = segformer_model(name)
        return model, lambda pixels: model(pixel_values=pixels).logits
    if name == SAM_VIT_B_NAME:
        model = sam_vit_b_model()
        return model, lambda pixels: model.get_image_embeddings(pixels)
    if name == SWIN2SR_NAME:
        model = swin2sr_model(2)
        return model, lambda pixels: model(pixel_values=pixels).reconstruction
    raise ValueError(f"Unknown peer {name!r}; expected one of {[*SEGFORMER_CONFIGS, SAM_VIT_B_NAME, SWIN2SR_NAME]}.")


__all__ = [
    "SAM_VIT_B_NAME",
    "SEGFORMER_CONFIGS",
    "SWIN2SR_LIGHTWEIGHT_X2",
    "SWIN2SR_NAME",
    "peer_model",
    "sam_vit_b_model",
    "segformer_model",
    "swin2sr_model",
]
