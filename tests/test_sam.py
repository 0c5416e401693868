"""EfficientViT-SAM: parity with the original (fixtures, `efficientsam` package), config, model, processor."""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import pytest
import torch

from evit_hf.convert import from_original
from evit_hf.models.efficientvit.configuration_efficientvit_sam import (
    SAM_PRESETS,
    EfficientViTSamConfig,
    sam_vision_config,
)
from evit_hf.models.efficientvit.modeling_efficientvit_sam import EfficientViTSamModel

SAM_CASES = sorted(SAM_PRESETS)
# The image processors use transformers 5's PIL backend; the models also run on 4.57.
needs_pil_processors = pytest.mark.skipif(
    importlib.util.find_spec("transformers.image_processing_backends") is None,
    reason="image processors need transformers >= 5",
)
HEAVY_CASES = {"sam-xl0", "sam-xl1"}  # 1024-pixel encoder input: too slow on a 2-core CPU for the default run


def tiny_sam_config(vision: dict | None = None, **overrides) -> EfficientViTSamConfig:
    """A small EfficientViT-SAM (128-pixel input, 8x8 embeddings of 32 channels) for fast API tests; `vision`
    overrides fields of the image encoder (the prompt encoder and mask decoder follow its neck)."""
    fields = dict(
        widths=[8, 16, 32, 64],
        depths=[1, 1, 1, 1],
        block_types=["res", "fmb", "mb", "att"],
        expand_ratios=[1, 2, 2, 2],
        downsample_expand_ratios=[1, 2, 2, 2],
        fewer_norm=[False, False, True, True],
        attention_head_dim=8,
        attention_scales=[3],
        hidden_act="gelu_tanh",
        image_size=128,
        neck_in_features=["stage3", "stage2"],
        neck_hidden_size=32,
        neck_depth=1,
        neck_output_size=8,
    )
    fields.update(vision or {})
    hidden, side = fields["neck_hidden_size"], fields["neck_output_size"]
    return EfficientViTSamConfig(
        vision_config=sam_vision_config(**fields),
        prompt_encoder_config={"hidden_size": hidden, "image_size": 16 * side, "patch_size": 16},
        mask_decoder_config={
            "hidden_size": hidden,
            "mlp_dim": 64,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 32,
        },
        **overrides,
    )


def assert_close(
    name: str, ours: torch.Tensor, ref: torch.Tensor, atol: float = 1e-4, rtol_std: float = 1e-3
):
    assert ours.shape == ref.shape, f"{name}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
    diff = (ours - ref).abs().max().item()
    scale = ref.std().item() if ref.numel() > 1 else ref.abs().item()
    assert diff < atol, f"{name}: max abs diff {diff:.3g}"
    if scale > 0:
        assert diff / scale < rtol_std, f"{name}: max abs diff {diff:.3g} is {diff / scale:.3g} of the std"


# ----------------------------------------------------------------------------------------------------
# Parity with the stored outputs of the original implementation


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in HEAVY_CASES else c for c in SAM_CASES]
)
@pytest.mark.parametrize("optimized", [True, False], ids=["optimized", "plain"])
def test_sam_fixture_parity(original_fixture, case, optimized):
    fixture = original_fixture(case)
    assert fixture.index["norm_eps"] == 1e-6
    model = from_original(fixture.state_dict, case)
    model.set_inference_optimizations(optimized)  # the eval-mode fast path (default) and the plain graph
    assert model.config.encoder_image_size == fixture.index["input"][-1]
    out = fixture.outputs
    with torch.no_grad():
        embeddings = model.get_image_embeddings(fixture.image)
        points = model(
            image_embeddings=embeddings,
            input_points=out["point_coords"][:, None],
            input_labels=out["point_labels"][:, None],
            multimask_output=True,
        )
        box = model(image_embeddings=embeddings, input_boxes=out["boxes"][:, None], multimask_output=False)
    assert embeddings.shape == (1, 256, 64, 64)
    assert points.pred_masks.shape == (1, 1, 3, 256, 256) and box.pred_masks.shape == (1, 1, 1, 256, 256)
    assert_close("embeddings", embeddings[:, ::4, ::4, ::4], out["embeddings"])
    assert_close("masks_points", points.pred_masks[:, 0, :, ::4, ::4], out["masks_points"])
    assert_close("iou_points", points.iou_scores[:, 0], out["iou_points"])
    assert_close("masks_box", box.pred_masks[:, 0, :, ::2, ::2], out["masks_box"])
    assert_close("iou_box", box.iou_scores[:, 0], out["iou_box"], rtol_std=math.inf)


# ----------------------------------------------------------------------------------------------------
# End to end against the `efficientsam` package (the original code), on random weights


def _random_state_dict(reference: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in reference.state_dict().items():
        if not value.is_floating_point():
            state[key] = value.clone()
            continue
        noise = torch.randn(value.shape, generator=generator)
        if key.endswith("running_var"):
            state[key] = 0.75 + 0.5 * torch.rand(value.shape, generator=generator)
        elif key.endswith("running_mean"):
            state[key] = 0.1 * noise
        elif value.ndim <= 1 and key.endswith("weight"):
            state[key] = 1.0 + 0.2 * noise
        elif value.ndim <= 1:
            state[key] = 0.05 * noise
        else:
            state[key] = noise * (0.8 / math.sqrt(max(value.numel() // value.shape[0], 1)))
    return state


def _efficientsam(case: str) -> torch.nn.Module:
    from evit_hf.reference.packages import use_reference_packages

    use_reference_packages()
    from efficientsam.models.efficientvit import sam as reference_sam
    from efficientsam.models.nn.norm import set_norm_eps

    # EfficientViTSam.__init__ builds its (torchvision) preprocessing transform, unused here: stub it.
    inert = SimpleNamespace(Compose=lambda ops: None, ToTensor=lambda: None, Normalize=lambda **kwargs: None)
    original_transforms, reference_sam.transforms = reference_sam.transforms, inert
    try:
        reference = getattr(reference_sam, "efficientvit_sam_" + case.removeprefix("sam-"))()
    finally:
        reference_sam.transforms = original_transforms
    set_norm_eps(reference, 1e-6)
    reference.load_state_dict(_random_state_dict(reference))
    return reference.eval()


# The neck resizes every stage to 64x64 whatever the input size, so a smaller input keeps the test fast and
# exercises the bicubic upsampling of every neck input.
@pytest.mark.parametrize("case,size", [("sam-l0", 256), pytest.param("sam-xl0", 512, marks=pytest.mark.slow)])
def test_sam_matches_efficientsam_end_to_end(case, size):
    reference = _efficientsam(case)
    model = from_original(reference.state_dict(), case)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, size, size, generator=generator).clamp(-2.5, 2.5)
    points = torch.rand(2, 2, 3, 2, generator=generator) * 1000
    labels = torch.tensor([[[1, 0, 1], [1, 1, -1]], [[0, 1, 1], [1, -1, -1]]])
    corners = torch.rand(2, 2, 2, 2, generator=generator) * 1000
    boxes = torch.cat([corners.min(dim=2).values, corners.max(dim=2).values], dim=-1)  # (2, 2, 4)
    mask_input = torch.randn(1, 1, 256, 256, generator=generator)

    with torch.no_grad():
        batched = [
            {"image": images[i], "point_coords": points[i], "point_labels": labels[i], "boxes": boxes[i]}
            for i in range(2)
        ]
        ref_masks, ref_iou = reference(batched, multimask_output=True)
        ours = model(pixel_values=images, input_points=points, input_labels=labels, input_boxes=boxes)
        assert_close("masks (points + boxes, multimask)", ours.pred_masks, ref_masks)
        assert_close("iou (points + boxes, multimask)", ours.iou_scores, ref_iou)

        ref_embeddings = reference.image_encoder(images)
        embeddings = model.get_image_embeddings(images)
        assert_close("embeddings", embeddings, ref_embeddings)

        # Points only (padding point appended), single mask; and a mask prompt with a box.
        sparse, dense = reference.prompt_encoder(points=(points[0], labels[0]), boxes=None, masks=None)
        ref_masks, ref_iou = reference.mask_decoder(
            ref_embeddings[:1], reference.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=False
        )
        ours = model(
            image_embeddings=embeddings[:1],
            input_points=points[:1],
            input_labels=labels[:1],
            multimask_output=False,
        )
        assert_close("masks (points, single)", ours.pred_masks[0], ref_masks)
        assert_close("iou (points, single)", ours.iou_scores[0], ref_iou)

        sparse, dense = reference.prompt_encoder(points=None, boxes=boxes[0, :1], masks=mask_input)
        ref_masks, ref_iou = reference.mask_decoder(
            ref_embeddings[:1], reference.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=True
        )
        ours = model(image_embeddings=embeddings[:1], input_boxes=boxes[:1, :1], input_masks=mask_input)
        assert_close("masks (box + mask input)", ours.pred_masks[0], ref_masks)
        assert_close("iou (box + mask input)", ours.iou_scores[0], ref_iou)

        # No prompt at all (what `SamModel(pixel_values=...)` answers): the decoder sees its output tokens only.
        sparse, dense = reference.prompt_encoder(points=None, boxes=None, masks=None)
        ref_masks, ref_iou = reference.mask_decoder(
            ref_embeddings, reference.prompt_encoder.get_dense_pe(), sparse, dense, multimask_output=True
        )
        ours = model(pixel_values=images)
        assert_close("masks (no prompt)", ours.pred_masks[:, 0], ref_masks)
        assert_close("iou (no prompt)", ours.iou_scores[:, 0], ref_iou)


def test_mask_decoder_layer_norms_use_sam_eps():
    model = EfficientViTSamModel(tiny_sam_config())
    norms = [m for m in model.mask_decoder.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)
    # one positional matrix for the image grid and the prompts: a single tensor (a parameter on transformers 5,
    # trained once; a buffer on 4.57)
    matrix = model.shared_image_embedding.positional_embedding
    assert model.prompt_encoder.shared_embedding.positional_embedding is matrix
    assert sum(t is matrix for t in [*model.parameters(), *model.buffers()]) == 1


# ----------------------------------------------------------------------------------------------------
# Config and model API


@pytest.mark.parametrize("case", SAM_CASES)
def test_presets(case):
    config = EfficientViTSamConfig.from_preset(case)
    vision = config.vision_config
    assert vision.norm_eps == 1e-6
    assert config.mask_decoder_config.layer_norm_eps == 1e-6 == config.prompt_encoder_config.layer_norm_eps
    assert config.prompt_image_size == 1024
    assert config.encoder_image_size == (512 if case.startswith("sam-l") else 1024)
    assert len(vision.neck_in_features) == 3 and vision.neck_hidden_size == 256


def test_config_round_trip(tmp_path):
    config = EfficientViTSamConfig.from_preset("sam-xl0")
    config.save_pretrained(tmp_path)
    loaded = EfficientViTSamConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.vision_config.neck_depth == 6 and loaded.vision_config.neck_in_features == [
        "stage5",
        "stage4",
        "stage3",
    ]
    assert type(loaded.mask_decoder_config).__name__ == "SamMaskDecoderConfig"


def test_config_errors():
    with pytest.raises(ValueError, match="Unknown EfficientViT-SAM preset"):
        EfficientViTSamConfig.from_preset("sam-b9")
    with pytest.raises(ValueError, match="image embeddings"):
        tiny_sam_config().__class__(vision_config=tiny_sam_config().vision_config)
    with pytest.raises(ValueError, match="neck_in_features"):
        sam_vision_config("l0", neck_in_features=["stage9"])


def test_model_save_load_and_auto(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForMaskGeneration

    import evit_hf  # noqa: F401  (registers the Auto classes)

    torch.manual_seed(0)
    model = EfficientViTSamModel(tiny_sam_config()).eval()
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), EfficientViTSamConfig)
    for auto in (AutoModel, AutoModelForMaskGeneration):
        loaded = auto.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, EfficientViTSamModel)
        assert loaded.prompt_encoder.shared_embedding.positional_embedding is (
            loaded.shared_image_embedding.positional_embedding
        )
        pixels = torch.randn(1, 3, 128, 128)
        points = torch.tensor([[[[30.0, 40.0]]]])
        with torch.no_grad():
            a, b = model(pixels, input_points=points), loaded(pixels, input_points=points)
        torch.testing.assert_close(a.pred_masks, b.pred_masks)
        torch.testing.assert_close(a.iou_scores, b.iou_scores)
        assert a.pred_masks.shape == (1, 1, 3, 32, 32)


def test_model_input_errors():
    model = EfficientViTSamModel(tiny_sam_config()).eval()
    embeddings = torch.randn(1, 32, 8, 8)
    points = torch.tensor([[[[30.0, 40.0]]]])
    cases = [
        (dict(), "exactly one of"),
        (dict(pixel_values=torch.randn(1, 3, 128, 128), image_embeddings=embeddings), "exactly one of"),
        (dict(image_embeddings=embeddings, input_points=points[0]), "input_points"),
        (
            dict(image_embeddings=embeddings, input_points=points, input_labels=torch.ones(1, 1, 2)),
            "input_labels",
        ),
        (dict(image_embeddings=embeddings, input_labels=torch.ones(1, 1, 1)), "without `input_points`"),
        (dict(image_embeddings=embeddings, input_boxes=torch.ones(1, 4)), "input_boxes"),
        (
            dict(image_embeddings=embeddings, input_points=points, input_boxes=torch.ones(1, 2, 4)),
            "as many boxes",
        ),
        (dict(image_embeddings=embeddings, input_masks=torch.ones(1, 1, 16, 16)), "input_masks"),
        (dict(image_embeddings=embeddings.expand(2, -1, -1, -1), input_points=points), "batch size"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)


def test_encoder_only_checkpoint_loads(tmp_path):
    """A checkpoint of the image encoder alone (stage-1 distillation) loads as `SamModel` loads one: the prompt
    path, the positional matrix included, is initialised (it stayed on the meta device before) and tied."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = EfficientViTSamModel(tiny_sam_config()).eval()
    model.save_pretrained(tmp_path)
    encoder = {k: v for k, v in model.state_dict().items() if k.startswith("vision_encoder.")}
    save_file(encoder, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = EfficientViTSamModel.from_pretrained(tmp_path).eval()
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    matrix = loaded.shared_image_embedding.positional_embedding
    assert loaded.prompt_encoder.shared_embedding.positional_embedding is matrix
    assert torch.isfinite(matrix).all() and 0.5 < matrix.std() < 2  # Meta's N(0, 1) features
    reloaded = loaded.state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in encoder.items())
    pixels = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded.get_image_embeddings(pixels), model.get_image_embeddings(pixels))
        assert torch.isfinite(loaded(pixels, input_points=torch.tensor([[[[30.0, 40.0]]]])).pred_masks).all()


def test_converter_rejects_foreign_keys():
    with pytest.raises(ValueError, match="not in the original sam-l0 layout: image_encoder.head.weight"):
        from_original({"image_encoder.head.weight": torch.zeros(1)}, "sam-l0")


# ----------------------------------------------------------------------------------------------------
# Image processor, SamProcessor and the mask-generation pipeline


def _image(height: int = 300, width: int = 400):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


@needs_pil_processors
def test_processor_prompt_frame_is_1024_for_l_models():
    from transformers import SamProcessor

    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    processor = EfficientViTSamImageProcessor.for_config(EfficientViTSamConfig.from_preset("sam-l0"))
    inputs = SamProcessor(image_processor=processor)(
        images=_image(), input_points=[[[200, 150]]], input_boxes=[[[10, 20, 300, 250]]], return_tensors="pt"
    )
    assert inputs["pixel_values"].shape == (1, 3, 512, 512)  # encoder input: longest side 512, padded
    assert inputs["original_sizes"].tolist() == [[300, 400]]
    assert inputs["reshaped_input_sizes"].tolist() == [[768, 1024]]  # the 1024 prompt frame
    torch.testing.assert_close(inputs["input_points"].float(), torch.tensor([[[[512.0, 384.0]]]]))
    torch.testing.assert_close(inputs["input_boxes"].float(), torch.tensor([[[25.6, 51.2, 768.0, 640.0]]]))
    # Zero padding (after normalisation) below the resized image, 384 = int(300 * 512 / 400 + 0.5) rows.
    assert inputs["pixel_values"][0, :, 384:].abs().max() == 0
    assert inputs["pixel_values"][0, :, 383].abs().max() > 0


@needs_pil_processors
def test_post_process_masks_to_original_size():
    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    processor = EfficientViTSamImageProcessor(encoder_size=512)
    low_res = torch.zeros(1, 1, 3, 256, 256)
    low_res[..., :96, :128] = 1.0  # the top-left 384x512 of the 1024 frame = the top-left of the image
    masks = processor.post_process_masks(low_res, [[300, 400]], [[768, 1024]])
    assert masks[0].shape == (1, 3, 300, 400)
    assert masks[0][0, 0, :140, :190].all() and not masks[0][0, 0, 160:, 210:].any()


@needs_pil_processors
def test_processor_prompt_errors():
    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    processor = EfficientViTSamImageProcessor()
    check = processor.check_prompts
    check(
        (300, 400), input_points=[[[10, 10], [20, 30]]], input_labels=[[1, 0]], input_boxes=[[0, 0, 50, 60]]
    )
    cases = [
        (dict(), "No prompt"),
        (dict(input_labels=[[1]]), "without `input_points`"),
        (dict(input_points=[[[500, 10]]]), "outside"),
        (dict(input_points=[[10, 10]]), "point sets"),
        (dict(input_points=[[[10, 10]]], input_labels=[[1, 1]]), "one label per point"),
        (dict(input_points=[[[10, 10]]], input_labels=[[3]]), "labels must be"),
        (dict(input_boxes=[[50, 0, 10, 60]]), "x1 >= x0"),
        (dict(input_boxes=[[0, 0, 10, 600]]), "outside"),
        (dict(input_boxes=[[0, 1, 2]]), "input_boxes"),
        (dict(input_points=[[[1, 1]], [[2, 2]]], input_boxes=[[0, 0, 5, 5]]), "one box per point set"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            check((300, 400), **kwargs)


@needs_pil_processors
def test_nms_matches_greedy_reference():
    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], dtype=torch.float)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.99).tolist() == [3, 0, 1, 2]
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


@needs_pil_processors
def test_mask_generation_pipeline_and_auto_processor(tmp_path):
    from transformers import AutoImageProcessor, pipeline

    import evit_hf  # noqa: F401  (registers the Auto classes)
    from evit_hf.models.efficientvit.image_processing_efficientvit_sam import EfficientViTSamImageProcessor

    torch.manual_seed(0)
    config = tiny_sam_config()
    model = EfficientViTSamModel(config).eval()
    processor = EfficientViTSamImageProcessor.for_config(config)
    generator = pipeline("mask-generation", model=model, image_processor=processor, points_per_batch=16)
    result = generator(_image(), points_per_crop=4, pred_iou_thresh=-1e9, stability_score_thresh=-1e9)
    assert len(result["masks"]) >= 1 and result["masks"][0].shape == (300, 400)
    assert len(result["scores"]) == len(result["masks"])

    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, EfficientViTSamImageProcessor) and loaded.encoder_size == 128
    result = pipeline("mask-generation", model=str(tmp_path), points_per_batch=16)(
        _image(), points_per_crop=2, pred_iou_thresh=-1e9, stability_score_thresh=-1e9
    )
    assert result["masks"][0].shape == (300, 400)
