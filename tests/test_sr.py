"""EfficientViT super-resolution: config and presets, the model (shapes, global bicubic residual, loss, dtypes,
input errors), save/load and Auto classes, tiling, the image processor and the pipeline (with evit-hf and
through trust_remote_code without it), Y-channel PSNR/SSIM against scikit-image, `evit-hf upscale`, and the
`bench sr` smoke test. Random weights throughout (no trained SR checkpoint exists yet)."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import evit_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from conftest import randomize_weights
from evit_hf import EfficientViTForImageSuperResolution, EfficientViTSRConfig
from evit_hf.models.efficientvit.configuration_efficientvit import EfficientViTConfig
from evit_hf.models.efficientvit.configuration_efficientvit_sr import SR_PRESETS
from evit_hf.models.efficientvit.modeling_efficientvit import EfficientViTBlock
from evit_hf.models.efficientvit.modeling_efficientvit_sr import check_tile_arguments, tiled_upscale

# The processor and the pipeline use transformers 5's PIL backend; config and model also run on 4.57.
needs_v5 = pytest.mark.skipif(
    importlib.util.find_spec("transformers.image_processing_backends") is None,
    reason="the SR image processor and pipeline need transformers >= 5",
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread_per_xdist_worker():
    """Under pytest-xdist, workers share the cores; one OpenMP thread each avoids barrier stalls."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_config(**overrides) -> EfficientViTSRConfig:
    kwargs = dict(hidden_size=16, num_blocks=2, attention_head_dim=8, expand_ratio=2, upsampler_hidden_size=8)
    kwargs.update(overrides)
    return EfficientViTSRConfig(**kwargs)


def random_model(seed: int = 0, residual_scale: float | None = None, **overrides):
    """A tiny model with unit-scale random weights; `residual_scale` rescales the last conv so the predicted
    residual has about that std (a trained model's residual is a few percent of the intensity range)."""
    torch.manual_seed(seed)
    model = randomize_weights(EfficientViTForImageSuperResolution(tiny_config(**overrides)), seed).eval()
    if residual_scale is not None:
        with torch.no_grad():
            x = torch.rand(1, 3, 24, 24)
            residual = model(x).reconstruction - F.interpolate(x, scale_factor=model.config.upscale, mode="bicubic")
            model.upsampler.proj.weight.mul_(residual_scale / residual.std())
            model.upsampler.proj.bias.mul_(residual_scale / residual.std())
    return model


def photo(height: int = 96, width: int = 128) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()[100 : 100 + height, 150 : 150 + width])


# ----------------------------------------------------------------------------------------------------
# Config and presets


@pytest.mark.parametrize("name", sorted(SR_PRESETS))
def test_presets_build_with_expected_size(name):
    from evit_hf.bench.core import count_macs, count_parameters

    config = EfficientViTSRConfig.from_preset(name)
    with torch.device("meta"):
        model = EfficientViTForImageSuperResolution(config)
    params = count_parameters(model) / 1e6
    gmacs = count_macs(model, (1, 3, 64, 64)) / 1e9
    if name.startswith("sr-light"):
        assert 0.3 < params < 1.0 and 1.0 < gmacs < 3.0
    else:
        assert 1.0 < params < 5.0 and config.num_blocks > SR_PRESETS["sr-light-x2"]["num_blocks"]
    assert config.upscale == int(name[-1])


def test_from_preset_overrides_and_unknown_names():
    config = EfficientViTSRConfig.from_preset("sr-light-x4", num_blocks=3, norm_type="layernorm")
    assert (config.upscale, config.num_blocks, config.norm_type) == (4, 3, "layernorm")
    with pytest.raises(ValueError, match="Known presets: sr-ffhq-x4, sr-light-x2"):
        EfficientViTSRConfig.from_preset("sr-light-x8")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("upscale", 5, "upscale"),
        ("upscale", True, "upscale"),
        ("hidden_size", 0, "hidden_size"),
        ("num_blocks", 1.5, "num_blocks"),
        ("attention_head_dim", 32, "no attention head"),
        ("attention_scales", [4], "odd"),
        ("hidden_act", "swish", "Unknown activation"),
        ("norm_type", "batchnorm", "BatchNorm is not offered"),
        ("upsampler", "nearest+conv", "upsampler"),
        ("img_range", 0.0, "img_range"),
        ("image_mean", [0.5, 0.5], "image_mean"),
        ("drop_path_rate", 1.0, "drop_path_rate"),
        ("expand_ratio", 0, "expand_ratio"),
    ],
)
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**{field: value})


def test_config_round_trip(tmp_path):
    config = tiny_config(upscale=3, attention_scales=[3, 5], image_mean=[0.1, 0.2, 0.3])
    config.save_pretrained(tmp_path)
    reloaded = EfficientViTSRConfig.from_pretrained(tmp_path)
    assert reloaded.to_dict() == config.to_dict()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "efficientvit_sr"


# ----------------------------------------------------------------------------------------------------
# Model


@pytest.mark.parametrize("upscale", [2, 3, 4])
@pytest.mark.parametrize("upsampler", ["pixelshuffledirect", "pixelshuffle"])
def test_shapes_for_every_scale_and_odd_sizes(upscale, upsampler):
    model = random_model(upscale=upscale, upsampler=upsampler)
    for height, width in [(1, 1), (7, 13), (17, 10)]:
        with torch.inference_mode():
            out = model(torch.rand(2, 3, height, width))
        assert out.reconstruction.shape == (2, 3, height * upscale, width * upscale)
        assert out.reconstruction.dtype == torch.float32 and torch.isfinite(out.reconstruction).all()


@pytest.mark.parametrize("upsampler", ["pixelshuffledirect", "pixelshuffle"])
def test_zero_last_layer_returns_exactly_bicubic(upsampler):
    x = torch.rand(2, 3, 11, 14)
    # A fresh model starts with the last conv at zero; a trained-looking (random) one with it zeroed too.
    fresh = EfficientViTForImageSuperResolution(tiny_config(upsampler=upsampler, upscale=3)).eval()
    trained = random_model(upsampler=upsampler, upscale=3)
    with torch.no_grad():
        trained.upsampler.proj.weight.zero_()
        trained.upsampler.proj.bias.zero_()
    expected = F.interpolate(x, size=(33, 42), mode="bicubic", align_corners=False)
    for model in (fresh, trained):
        with torch.inference_mode():
            assert torch.equal(model(x).reconstruction, expected)
    with torch.inference_mode():  # and the body matters once the last layer is not zero
        assert (random_model(upsampler=upsampler, upscale=3)(x).reconstruction - expected).abs().max() > 1e-2


def test_l1_loss_and_tuple_outputs():
    model = random_model()
    x, labels = torch.rand(2, 3, 9, 10), torch.rand(2, 3, 18, 20)
    with torch.inference_mode():
        out = model(x, labels=labels)
        assert torch.allclose(out.loss, (out.reconstruction - labels).abs().mean(), atol=1e-7)
        loss, reconstruction = model(x, labels=labels, return_dict=False)
        assert torch.equal(reconstruction, out.reconstruction) and torch.equal(loss, out.loss)
        (only,) = model(x, return_dict=False)
        hidden = model(x, output_hidden_states=True).hidden_states
    assert torch.equal(only, out.reconstruction)
    assert len(hidden) == model.config.num_blocks + 1 and hidden[0].shape == (2, 16, 9, 10)
    with pytest.raises(ValueError, match=r"reconstruction's shape \(2, 3, 18, 20\)"):
        model(x, labels=torch.rand(2, 3, 20, 20))
    with pytest.raises(ValueError, match="floating point"):
        model(x, labels=torch.zeros(2, 3, 18, 20, dtype=torch.uint8))


def test_loss_backward_reaches_every_parameter():
    model = random_model().train()
    model(torch.rand(2, 3, 8, 8), labels=torch.rand(2, 3, 16, 16)).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_is_finite_and_close(dtype):
    model = random_model(residual_scale=0.05)
    x = torch.rand(1, 3, 16, 20)
    with torch.inference_mode():
        reference = model(x).reconstruction
        with torch.autocast("cpu", dtype=dtype):
            out = model(x).reconstruction
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert (out - reference).abs().max() < 0.02


def test_half_weights_give_half_outputs():
    model = random_model(residual_scale=0.05).to(torch.bfloat16)
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 8, 8, dtype=torch.bfloat16)).reconstruction
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_bad_inputs_raise_clear_errors():
    model = random_model()
    cases = [
        (torch.rand(1, 1, 8, 8), "Expected 3 input channels"),
        (torch.randint(0, 255, (1, 3, 8, 8), dtype=torch.uint8), "floating point"),
        (torch.rand(3, 8, 8), r"\(batch, channels, height, width\)"),
        (torch.rand(0, 3, 8, 8), "empty batch"),
        (torch.rand(1, 3, 0, 8), "smaller than"),
        (np.zeros((1, 3, 8, 8), dtype=np.float32), "torch.Tensor"),
    ]
    for pixel_values, message in cases:
        with pytest.raises(ValueError, match=message):
            model(pixel_values)


def test_norm_options_and_shared_block_state_dict_unchanged():
    none = random_model()
    assert not any(".norm." in k for k in none.state_dict())
    assert "blocks.0.attention.proj.conv.bias" in none.state_dict()
    assert "blocks.0.local.pointwise_conv.conv.bias" in none.state_dict()
    layernorm = random_model(norm_type="layernorm")
    assert "blocks.0.attention.proj.norm.weight" in layernorm.state_dict()
    with torch.inference_mode():
        assert torch.isfinite(layernorm(torch.rand(1, 3, 6, 6)).reconstruction).all()
    # The released models' block keeps its BatchNorm layout (the converters and fidelity tests rely on it).
    block = EfficientViTBlock(16, EfficientViTConfig(attention_head_dim=8), expand_ratio=4)
    assert sorted(block.state_dict()) == sorted([
        "attention.qkv.conv.weight", "attention.aggregations.0.depthwise.weight",
        "attention.aggregations.0.pointwise.weight", "attention.proj.conv.weight", "attention.proj.norm.weight",
        "attention.proj.norm.bias", "attention.proj.norm.running_mean", "attention.proj.norm.running_var",
        "attention.proj.norm.num_batches_tracked", "local.expand_conv.conv.weight", "local.expand_conv.conv.bias",
        "local.depthwise_conv.conv.weight", "local.depthwise_conv.conv.bias", "local.pointwise_conv.conv.weight",
        "local.pointwise_conv.norm.weight", "local.pointwise_conv.norm.bias",
        "local.pointwise_conv.norm.running_mean", "local.pointwise_conv.norm.running_var",
        "local.pointwise_conv.norm.num_batches_tracked",
    ])


def test_save_load_round_trip_and_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForImageToImage

    model = random_model(residual_scale=0.05, upscale=3)
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert {"model.safetensors", "config.json", "configuration_efficientvit_sr.py", "modeling_efficientvit_sr.py",
            "modeling_efficientvit.py", "pipeline_efficientvit_sr.py"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    saved = json.loads((tmp_path / "config.json").read_text())
    auto_map, pipelines = saved["auto_map"], saved["custom_pipelines"]
    assert auto_map["AutoModelForImageToImage"] == "modeling_efficientvit_sr.EfficientViTForImageSuperResolution"
    assert pipelines["image-super-resolution"]["impl"] == "pipeline_efficientvit_sr.SuperResolutionPipeline"
    assert isinstance(AutoConfig.from_pretrained(tmp_path), EfficientViTSRConfig)
    x = torch.rand(1, 3, 10, 12)
    with torch.inference_mode():
        expected = model(x).reconstruction
        for auto in (AutoModelForImageToImage, AutoModel):
            reloaded = auto.from_pretrained(tmp_path).eval()
            assert type(reloaded) is EfficientViTForImageSuperResolution
            assert torch.equal(reloaded(x).reconstruction, expected)


# ----------------------------------------------------------------------------------------------------
# Tiling


def local_upscaler(radius: int = 2, scale: int = 2):
    """A purely local x`scale` upscaler (one (2r+1)^2 conv + pixel shuffle): receptive radius `radius`."""
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 3 * scale**2, 2 * radius + 1, padding=radius)
    return lambda x: F.pixel_shuffle(conv(x), scale)


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), [(50, 70, 24, 8), (33, 17, 16, 7), (40, 40, 40, 8)])
def test_tiling_is_exact_when_the_overlap_covers_the_receptive_field(height, width, tile, overlap):
    upscale = local_upscaler(radius=overlap // 4)
    x = torch.rand(1, 3, height, width)
    with torch.no_grad():
        tiled = tiled_upscale(upscale, x, 2, tile, overlap)
        assert (tiled - upscale(x)).abs().max() < 1e-5


def _scale_attention(model: EfficientViTForImageSuperResolution, factor: float) -> None:
    with torch.no_grad():
        for block in model.blocks:
            block.attention.proj.conv.weight.mul_(factor)
            block.attention.proj.conv.bias.mul_(factor)


def test_tiled_model_is_exact_without_the_global_attention():
    # Attention branches off: the model is local (receptive radius 5 input pixels: stem, 2 depthwise convs,
    # body conv, upsampler conv; bicubic needs 2), which a quarter of a 20-pixel overlap covers.
    model = random_model()
    _scale_attention(model, 0.0)
    image = torch.from_numpy(np.array(photo(96, 128))).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        untiled = model(pixel_values=image).reconstruction
        tiled = tiled_upscale(lambda t: model(pixel_values=t).reconstruction, image, 2, 48, 20)
    assert (tiled - untiled).abs().max() < 1e-5


def test_tiled_model_matches_untiled_and_bounds_the_input_size():
    # The global linear attention sees one tile at a time, so tiles differ from the whole image. With
    # attention at 0.3x unit-scale random weights (still a large share of each block) the result stays > 40 dB
    # from the untiled one; at full unit scale it is about 31 dB (random attention is far more peaked than a
    # trained one).
    torch.manual_seed(0)
    model = randomize_weights(EfficientViTForImageSuperResolution(tiny_config()), 0).eval()
    _scale_attention(model, 0.3)
    with torch.no_grad():
        x = torch.rand(1, 3, 24, 24)
        residual = model(x).reconstruction - F.interpolate(x, scale_factor=2, mode="bicubic")
        model.upsampler.proj.weight.mul_(0.05 / residual.std())
        model.upsampler.proj.bias.mul_(0.05 / residual.std())
    image = torch.from_numpy(np.array(photo(96, 128))).permute(2, 0, 1)[None].float() / 255
    seen = []
    model.register_forward_pre_hook(lambda _, args, kwargs: seen.append(tuple(kwargs["pixel_values"].shape)),
                                    with_kwargs=True)
    with torch.inference_mode():
        untiled = model(pixel_values=image).reconstruction
        seen.clear()
        tiled = tiled_upscale(lambda t: model(pixel_values=t).reconstruction, image, 2, 48, 16)
    # rows start at 0, 32, 48 and columns at 0, 32, 64, 80: 12 tiles, none larger than 48 pixels
    assert len(seen) == 12 and {s[-2:] for s in seen} == {(48, 48)}
    mse = ((tiled.clamp(0, 1) - untiled.clamp(0, 1)) ** 2).mean().item()
    assert 10 * math.log10(1 / mse) > 40


def test_tile_argument_errors():
    for size, overlap, message in [(0, 0, "tile_size"), (16, -1, "tile_overlap"), (16, 8, "less than half"),
                                   (16.0, 2, "tile_size")]:
        with pytest.raises(ValueError, match=message):
            check_tile_arguments(size, overlap)


# ----------------------------------------------------------------------------------------------------
# Image processor and pipeline (transformers >= 5)


@needs_v5
def test_processor_pad_and_crop_round_trip():
    from evit_hf import EfficientViTSRImageProcessor

    image = photo(13, 21)
    processor = EfficientViTSRImageProcessor(pad_size=8)  # Swin2SR's legacy name: pad to a multiple of 8
    assert processor.do_pad and processor.size_divisor == 8
    inputs = processor(image, return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 16, 24) and inputs["original_sizes"].tolist() == [[13, 21]]
    pixels = inputs["pixel_values"][0]
    original = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    assert torch.equal(pixels[:, :13, :21], original)
    assert torch.equal(pixels[:, 13, :21], original[:, 11])  # reflect padding (row 13 mirrors row 11)
    upscaled = F.interpolate(inputs["pixel_values"], scale_factor=3, mode="nearest")
    (result,) = processor.post_process_super_resolution(upscaled, inputs["original_sizes"], scale=3)
    assert result.size == (63, 39)
    assert np.array_equal(np.asarray(result), np.asarray(image.resize((63, 39), Image.NEAREST)))
    # without padding the sizes are kept; a batch of different sizes is padded to the largest
    assert EfficientViTSRImageProcessor()(image, return_tensors="pt")["pixel_values"].shape == (1, 3, 13, 21)
    batch = EfficientViTSRImageProcessor()([image, photo(10, 30)], return_tensors="pt")
    assert batch["pixel_values"].shape == (2, 3, 13, 30) and batch["original_sizes"].tolist() == [[13, 21], [10, 30]]
    with pytest.raises(ValueError, match="upscaling factor"):
        processor.post_process_super_resolution(upscaled, inputs["original_sizes"])
    with pytest.raises(ValueError, match="Cannot crop"):
        processor.post_process_super_resolution(upscaled, [[40, 40]], scale=3)


@needs_v5
def test_processor_alpha_high_bit_depth_and_empty_images():
    from evit_hf import EfficientViTSRImageProcessor

    processor = EfficientViTSRImageProcessor()
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0], rgba[:3, :, 3] = 200, 255  # top half opaque red-ish, bottom half fully transparent
    pixels = processor(Image.fromarray(rgba, "RGBA"), return_tensors="pt")["pixel_values"][0]
    assert torch.allclose(pixels[:, :3], torch.tensor([200 / 255, 0, 0]).view(3, 1, 1).expand(3, 3, 8))
    assert torch.equal(pixels[:, 3:], torch.ones(3, 3, 8))  # transparent -> white
    sixteen = Image.fromarray(np.full((5, 5), 65535, dtype=np.uint16))
    assert torch.equal(processor(sixteen, return_tensors="pt")["pixel_values"], torch.ones(1, 3, 5, 5))
    assert processor(Image.new("L", (4, 3), 51), return_tensors="pt")["pixel_values"].shape == (1, 3, 3, 4)
    with pytest.raises(ValueError, match="empty"):
        processor(Image.new("RGB", (0, 5)))


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    """A tiny x2 model saved as users get it (`save_pretrained_with_code`), with its expected output."""
    from evit_hf.hub_utils import save_pretrained_with_code

    folder = tmp_path_factory.mktemp("sr")
    model = random_model(residual_scale=0.05)
    save_pretrained_with_code(model, folder)  # SR models get the default processor
    return folder, model


@needs_v5
def test_pipeline_with_evit_hf(saved_folder, tmp_path):
    from transformers import AutoImageProcessor, pipeline

    from evit_hf import EfficientViTSRImageProcessor, SuperResolutionPipeline

    folder, model = saved_folder
    assert isinstance(AutoImageProcessor.from_pretrained(folder), EfficientViTSRImageProcessor)
    upscaler = pipeline("image-super-resolution", model=str(folder))
    assert isinstance(upscaler, SuperResolutionPipeline)
    image = photo(30, 45)
    result = upscaler(image)
    assert isinstance(result, Image.Image) and result.size == (90, 60)
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = (model(pixels).reconstruction[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(result).astype(int) - expected).max() <= 1
    # a path, a list, tiles per call, a model instance without a processor
    image.save(tmp_path / "in.png")
    results = upscaler([str(tmp_path / "in.png"), image], tile_size=16, tile_overlap=4)
    assert [r.size for r in results] == [(90, 60), (90, 60)]
    assert np.asarray(results[1]).astype(float).std() > 10
    assert pipeline("image-super-resolution", model=model)(image).size == (90, 60)
    with pytest.raises(ValueError, match="less than half"):
        upscaler(image, tile_size=16, tile_overlap=8)
    with pytest.raises(ValueError, match="Unknown argument"):
        upscaler(image, tile=16)


@needs_v5
def test_pipeline_runs_transformers_swin2sr():
    # AutoModelForImageToImage's own model: its processor pads to multiples of 8 and has no post-processing;
    # the pipeline keeps the padding and crops it away.
    from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution, Swin2SRImageProcessorPil, pipeline

    torch.manual_seed(0)
    config = Swin2SRConfig(embed_dim=12, depths=[1], num_heads=[2], upsampler="pixelshuffledirect", upscale=2)
    upscaler = pipeline("image-super-resolution", model=Swin2SRForImageSuperResolution(config).eval(),
                        image_processor=Swin2SRImageProcessorPil())
    assert upscaler(photo(21, 30)).size == (60, 42)
    assert upscaler(photo(21, 30), tile_size=16, tile_overlap=4).size == (60, 42)


# ----------------------------------------------------------------------------------------------------
# Metrics


def test_metrics_match_scikit_image():
    from skimage import data
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from evit_hf.metrics import psnr_y, rgb_to_y, ssim_y

    hr = data.astronaut()[:200, :240]
    rng = np.random.default_rng(0)
    sr = np.clip(hr.astype(int) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    for border in (0, 2, 4):
        y_sr, y_hr = rgb_to_y(sr), rgb_to_y(hr)
        if border:
            y_sr, y_hr = y_sr[border:-border, border:-border], y_hr[border:-border, border:-border]
        psnr = peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
        ssim = structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
        assert abs(psnr_y(sr, hr, border) - psnr) < 1e-6
        assert abs(ssim_y(Image.fromarray(sr), Image.fromarray(hr), border) - ssim) < 1e-4
        assert 20 < psnr < 50 and 0.5 < ssim < 1


def test_metrics_hand_computed_values_and_errors():
    from evit_hf.metrics import psnr_y, rgb_to_y, ssim_y

    hr = np.full((20, 20), 100, dtype=np.uint8)
    assert psnr_y(hr, hr) == math.inf and ssim_y(hr, hr) == pytest.approx(1.0)
    # grey R = G = B: Y = 16 + 219 * v / 255, so +10 grey levels is +2190/255 in Y everywhere
    assert rgb_to_y(hr)[0, 0] == pytest.approx(16 + 219 * 100 / 255)
    expected = 10 * math.log10(255**2 / (2190 / 255) ** 2)
    assert psnr_y(hr + 10, hr) == pytest.approx(expected, abs=1e-9)
    # a difference only in the 2-pixel border disappears with crop_border=2
    sr = hr.copy()
    sr[:2] = 0
    assert psnr_y(sr, hr, crop_border=0) < 30 and psnr_y(sr, hr, crop_border=2) == math.inf
    with pytest.raises(ValueError, match="sizes differ"):
        psnr_y(hr, hr[:10])
    with pytest.raises(ValueError, match="uint8"):
        psnr_y(hr.astype(np.float32), hr)
    with pytest.raises(ValueError, match="leaves nothing"):
        psnr_y(hr, hr, crop_border=10)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_y(hr, hr, crop_border=5)


# ----------------------------------------------------------------------------------------------------
# CLI and benchmark


@needs_v5
def test_upscale_cli(saved_folder, tmp_path, monkeypatch, capsys):
    from evit_hf import sr_utils
    from evit_hf.cli import main

    folder, _ = saved_folder
    image = photo(20, 30)
    image.save(tmp_path / "in.png")
    args = ["upscale", str(tmp_path / "in.png"), "--out"]
    assert main(args + [str(tmp_path / "a.png"), "--model", str(folder), "--compare", str(tmp_path / "c.png")]) == 0
    assert Image.open(tmp_path / "a.png").size == (60, 40)
    assert Image.open(tmp_path / "c.png").size == (60 + 8 + 60, 24 + 40)
    with pytest.warns(UserWarning, match="random weights"):
        assert main(args + [str(tmp_path / "b.png"), "--model", "random:sr-light", "--scale", "3", "--tile-size", "8",
                            "--tile-overlap", "2"]) == 0
    assert Image.open(tmp_path / "b.png").size == (90, 60)
    # the embedded checkpoint: missing -> exit 2 with a message; present -> used by default
    monkeypatch.setattr(sr_utils, "embedded_sr_checkpoint", lambda: tmp_path / "no-such-folder")
    capsys.readouterr()
    assert main(args + [str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert "embedded super-resolution checkpoint is missing" in err and "--model" in err
    monkeypatch.setattr(sr_utils, "embedded_sr_checkpoint", lambda: folder)
    assert main(args + [str(tmp_path / "d.png")]) == 0 and Image.open(tmp_path / "d.png").size == (60, 40)
    assert main(args + [str(tmp_path / "e.png"), "--scale", "4"]) == 2
    assert "upscales x2, not x4" in capsys.readouterr().err
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["upscale", str(tmp_path / "bad.png"), "--out", str(tmp_path / "f.png"), "--model", "sr-light-x2"]) == 2
    assert main(["upscale", str(tmp_path / "missing.png"), "--out", str(tmp_path / "f.png")]) == 2
    assert main(args + [str(tmp_path / "f.png"), "--model", "random:sr-huge-x2"]) == 2
    assert "Unknown SR preset" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "f.png"), "--model", "sr-light-x9"]) == 2
    assert "did you mean 'sr-light-x2'" in capsys.readouterr().err


def test_embedded_checkpoint_location():
    from evit_hf.sr_utils import embedded_sr_checkpoint

    path = embedded_sr_checkpoint()
    assert path.name == "efficientvit-sr-x2" and path.parent.name == "weights" and path.parent.parent.name == "evit_hf"


def test_bench_smoke(monkeypatch, capsys):
    from evit_hf.bench import super_resolution
    from evit_hf.cli import main

    rows = super_resolution.run(sizes=((16, 16), (16, 24)), budget_s=0.01, max_runs=2, threads=1)
    assert [(r["model"], r["size"]) for r in rows] == [
        ("sr-light-x2", "16x16->32x32"), ("sr-light-x2", "16x24->32x48"),
        ("swin2sr-lightweight-x2", "16x16->32x32"), ("swin2sr-lightweight-x2", "16x24->32x48"),
    ]
    ours, swin = rows[0], rows[2]
    assert ours["median_ms"] > 0 and ours["vs_swin2sr"] > 0 and ours["gmacs"] > 0
    assert 0.3 < ours["params_m"] < 1.0 and 0.9 < swin["params_m"] < 1.1
    assert "Swin2SR / ours" in super_resolution.format_table(rows)
    with pytest.raises(ValueError, match="Unknown super-resolution presets"):
        super_resolution.run(presets=["sr-light-x8"])
    with pytest.raises(ValueError, match="multiples of 8"):
        super_resolution.run(sizes=((20, 20),))
    # `evit-hf bench sr` is wired to this module (tiny sizes so the smoke test stays fast)
    real_run = super_resolution.run
    monkeypatch.setattr(super_resolution, "run", lambda **kw: real_run(sizes=((12, 12),), threads=1, max_runs=1,
                                                                      peers=False, **kw))
    assert main(["bench", "sr", "--budget", "0.01"]) == 0
    assert "| sr-light-x2 | 12x12->24x24 |" in capsys.readouterr().out
