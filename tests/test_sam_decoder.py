"""`PromptBatchDecoder`: the shared-work mask decoder equals the model's decoder (fp32 tolerance) for every prompt
kind, and does less work per prompt (MACs counted with `FlopCounterMode`)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from evit_hf.models.efficientvit import EfficientViTSamConfig, EfficientViTSamModel
from evit_hf.predict import PromptBatchDecoder
from evit_hf.reference import randomize_
from test_sam import tiny_sam_config

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPTS = 5


@pytest.fixture(scope="module", params=["tiny", "sam-l0"])
def model(request):
    config = tiny_sam_config() if request.param == "tiny" else EfficientViTSamConfig.from_preset(request.param)
    return randomize_(EfficientViTSamModel(config), seed=0).eval()


def _prompts(config, generator: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    frame = config.prompt_encoder_config.image_size
    corners = torch.rand(PROMPTS, 2, 2, generator=generator) * frame
    boxes = torch.cat([corners.min(1).values, corners.max(1).values], dim=-1)
    one = torch.rand(PROMPTS, 1, 2, generator=generator) * frame
    # 12 points and labels of every kind: 17 tokens, so H*T exceeds the attention width (the model's own
    # attention modules run instead of the associative form)
    many = torch.rand(PROMPTS, 12, 2, generator=generator) * frame
    labels = torch.tensor([1, 0, 1, -1, 1, 0, 1, 1, -10, 0, 1, 1]).expand(PROMPTS, -1)
    return {"point": {"points": one}, "points": {"points": many, "labels": labels}, "box": {"boxes": boxes},
            "point+box": {"points": one, "boxes": boxes}}


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("with_mask_input", [False, True])
def test_equals_the_models_decoder(model, multimask, with_mask_input):
    config = model.config.prompt_encoder_config
    generator = torch.Generator().manual_seed(1)
    side = config.image_embedding_size
    embeddings = torch.randn(1, config.hidden_size, side, side, generator=generator)
    mask_input = torch.randn(1, 1, 4 * side, 4 * side, generator=generator) if with_mask_input else None
    decoder = PromptBatchDecoder(model)
    context = decoder.prepare(embeddings, mask_input)
    associative = []
    for name, prompt in _prompts(model.config, generator).items():
        inputs = {}
        if "points" in prompt:
            labels = prompt.get("labels", torch.ones(prompt["points"].shape[:2], dtype=torch.long))
            inputs.update(input_points=prompt["points"][None], input_labels=labels[None])
        if "boxes" in prompt:
            inputs["input_boxes"] = prompt["boxes"][None]
        with torch.inference_mode():
            expected = model(image_embeddings=embeddings, input_masks=mask_input, multimask_output=multimask, **inputs)
        logits, scores = decoder(context, multimask_output=multimask, **prompt)
        assert logits.shape == expected.pred_masks.shape[1:] and scores.shape == expected.iou_scores.shape[1:]
        torch.testing.assert_close(logits, expected.pred_masks[0], atol=1e-4, rtol=1e-4, msg=name)
        torch.testing.assert_close(scores, expected.iou_scores[0], atol=1e-5, rtol=1e-5, msg=name)
        sparse = decoder.sparse_embeddings(**prompt)
        attention = model.mask_decoder.transformer.layers[0].cross_attn_image_to_token
        associative.append(decoder._associative(attention, 5 + sparse.shape[1]))
    assert associative[0] and not associative[1]  # both forms ran


def test_masks_of_kept_outputs_only(model):
    """`masks(decoded, keep)` gives exactly the kept (prompt, output) pairs of the full result."""
    config = model.config.prompt_encoder_config
    generator = torch.Generator().manual_seed(2)
    side = config.image_embedding_size
    decoder = PromptBatchDecoder(model)
    context = decoder.prepare(torch.randn(1, config.hidden_size, side, side, generator=generator))
    points = torch.rand(PROMPTS, 1, 2, generator=generator) * config.image_size
    decoded = decoder.decode(context, decoder.sparse_embeddings(points), multimask_output=True)
    everything = decoder.masks(decoded)
    keep = torch.zeros(PROMPTS, 3, dtype=torch.bool)
    keep[0, 2] = keep[3, 0] = keep[3, 1] = True
    kept = decoder.masks(decoded, keep)
    torch.testing.assert_close(kept, everything[keep.nonzero(as_tuple=True)])
    assert decoder.masks(decoded, torch.zeros_like(keep)).shape == (0, 4 * side, 4 * side)


def _macs(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2


def test_shared_work_costs_less_per_prompt():
    """On SAM-L0 (64x64 image tokens) the model's decoder costs 1.77 GMACs per point prompt; ours at most a
    third of that for the transformer and IoUs, and the masks only for kept prompts."""
    config = EfficientViTSamConfig.from_preset("sam-l0")
    with torch.device("meta"):
        model = EfficientViTSamModel(config).eval().requires_grad_(False)  # FlopCounterMode under inference_mode
    embeddings = torch.empty(1, 256, 64, 64, device="meta")
    points = torch.empty(8, 1, 2, device="meta")
    decoder = PromptBatchDecoder(model)
    with torch.no_grad():
        stock = _macs(lambda: model(image_embeddings=embeddings, input_points=points[None], multimask_output=True))
        context = decoder.prepare(embeddings)
        sparse = decoder.sparse_embeddings(points)
        tokens = _macs(lambda: decoder.decode(context, sparse, True))
        decoded = decoder.decode(context, sparse, True)
        masks = _macs(lambda: decoder.masks(decoded))
    assert 1.7e9 < stock / 8 < 1.85e9
    assert tokens / 8 < stock / 8 / 3
    assert (tokens + masks) / 8 < 0.5 * stock / 8
