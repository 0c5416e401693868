"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester`, `BackboneTesterMixin`,
`ImageProcessingTestMixin`, `ProcessorTesterMixin`) run against every EfficientViT model, config and processor.

The mixins come from the source distribution of the installed transformers (`transformers_common.load()`); this
module adds only what transformers' own `tests/models/*/test_modeling_*.py` files add: tiny model testers, the
overrides a convolutional or composite model needs (hidden states are feature maps; SAM's outputs are named
`vision_*`), and a skip with its reason where a test cannot apply. Where a transformers convention cannot be met
here the test stays visible as a strict expected failure that names the reason.
"""

from __future__ import annotations

import copy
import inspect
import unittest
from unittest.mock import patch

import numpy as np
import pytest
import torch

import evit_hf
from transformers_common import Unavailable, load

try:
    COMMON = load()
except Unavailable as error:
    pytest.skip(f"transformers' common tests are unavailable: {error}", allow_module_level=True)

from transformers.models.auto import modeling_auto  # noqa: E402

from evit_hf import (  # noqa: E402
    EfficientViTBackbone,
    EfficientViTConfig,
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTModel,
    EfficientViTSamConfig,
    EfficientViTSamModel,
    EfficientViTSRConfig,
)
from evit_hf.registration import AUTO_MODEL_CLASSES  # noqa: E402

ModelTesterMixin = COMMON["test_modeling_common"].ModelTesterMixin
floats_tensor = COMMON["test_modeling_common"].floats_tensor
ConfigTester = COMMON["test_configuration_common"].ConfigTester
BackboneTesterMixin = COMMON["test_backbone_common"].BackboneTesterMixin

# The common tests tell a model's role (base model without a loss, backbone, task head) by transformers' name
# tables; our classes enter them as `evit_hf.registration` registers them with the Auto classes. A class that
# serves a task head as well as `AutoModel` (SAM, super-resolution) counts as the head.
_AUTO_TABLES = {
    "AutoModel": modeling_auto.MODEL_MAPPING_NAMES,
    "AutoBackbone": modeling_auto.MODEL_FOR_BACKBONE_MAPPING_NAMES,
    "AutoModelForImageClassification": modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
    "AutoModelForSemanticSegmentation": modeling_auto.MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES,
    "AutoModelForMaskGeneration": modeling_auto.MODEL_FOR_MASK_GENERATION_MAPPING_NAMES,
    "AutoModelForImageToImage": modeling_auto.MODEL_FOR_IMAGE_TO_IMAGE_MAPPING_NAMES,
}


def _name_table_patches():
    patches = []
    for config_class, models in AUTO_MODEL_CLASSES.items():
        heads = {cls for auto, cls in models.items() if auto != "AutoModel"}
        for auto, model_class in models.items():
            if auto == "AutoModel" and model_class in heads:
                continue
            patches.append(patch.dict(_AUTO_TABLES[auto], {config_class.model_type: model_class.__name__}))
    return patches


class EfficientViTCommonTest(ModelTesterMixin):
    """What every EfficientViT test class shares: our classes in transformers' name tables while a test runs."""

    # `_init_weights` initialises every parameter and buffer (transformers skips this check for models older
    # than 2023 unless the model opts in).
    test_can_init_all_missing_weights_before_2023 = True
    test_resize_embeddings = False  # no token embeddings
    has_attentions = False

    def setUp(self):
        for name_patch in _name_table_patches():
            self.enterContext(name_patch)
        self.model_tester = self.model_tester_class(self)

    @unittest.skip(reason="EfficientViT models take pixel_values, not inputs_embeds")
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason="EfficientViT models take pixel_values, not input_ids")
    def test_inputs_embeds_matches_input_ids(self):
        pass


class PixelModelTester:
    """A model tester whose inputs are `batch_size` random images of `image_size` pixels (subclasses give
    `get_config`)."""

    batch_size = 2
    num_channels = 3

    def prepare_config_and_inputs_for_common(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        return self.get_config(), {"pixel_values": pixel_values}


# ------------------------------------------------------------------------------------- EfficientViT (config family)


class EfficientViTModelTester(PixelModelTester):
    """A narrow 5-stage B-style network: stem (stride 2), two MBConv stages and two attention stages."""

    def __init__(self, parent, batch_size=2, image_size=64, num_channels=3, num_labels=3, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        self.num_channels = num_channels
        self.num_labels = num_labels
        self.is_training = is_training
        self.widths = [8, 8, 16, 16, 32]
        self.config_fields = dict(
            widths=self.widths, depths=[1, 1, 1, 1, 1], block_types=["ds", "mb", "mb", "att", "att"],
            expand_ratios=[1, 2, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2, 2],
            fewer_norm=[False, False, False, True, True], attention_head_dim=8, head_widths=[32, 48],
            segmentation_head_width=16, segmentation_head_depth=1, segmentation_final_expand=2,
        )
        self.out_features = ["stage2", "stage4"]

    def get_config(self):
        return EfficientViTConfig(**self.config_fields, num_labels=self.num_labels, image_size=self.image_size,
                                  out_features=self.out_features)



class EfficientViTModelTest(EfficientViTCommonTest, unittest.TestCase):
    model_tester_class = EfficientViTModelTester
    all_model_classes = (
        EfficientViTModel,
        EfficientViTBackbone,
        EfficientViTForImageClassification,
        EfficientViTForSemanticSegmentation,
    )

    def setUp(self):
        super().setUp()
        self.config_tester = ConfigTester(self, config_class=EfficientViTConfig, has_text_modality=False,
                                          common_properties=["num_channels", "widths", "depths"],
                                          **self.model_tester.config_fields)

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_forward_signature(self):
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            arg_names = list(inspect.signature(model_class(config).forward).parameters)
            self.assertListEqual(arg_names[:1], ["pixel_values"])

    def test_hidden_states_output(self):
        # A convolutional network: the hidden states are the stages' feature maps (as ConvNeXt's and ResNet's
        # tests check them), one per stage, the stem's at half the input size.
        for model_class in self.all_model_classes:
            _test_stage_feature_maps(self, model_class, "hidden_states")

    def test_model_get_set_embeddings(self):
        _test_stem_is_the_input_embedding(self)


class EfficientViTBackboneTest(BackboneTesterMixin, unittest.TestCase):
    all_model_classes = (EfficientViTBackbone,)
    config_class = EfficientViTConfig
    has_attentions = False

    def setUp(self):
        self.model_tester = EfficientViTModelTester(self)

    def test_config(self):
        # BackboneTesterMixin.test_config with the stage count of our config: its `depths` lists the stem's blocks
        # too (the original's depth_list), so `stem, stage1 ... stageN` are len(depths) names, not len(depths) + 1;
        # every assertion of the mixin's test is made.
        config = self.config_class()
        expected_stage_names = ["stem"] + [f"stage{idx}" for idx in range(1, len(config.depths))]
        self.assertEqual(config.stage_names, expected_stage_names)
        self.assertTrue(set(config.out_features).issubset(set(config.stage_names)))
        config = self.config_class(out_features=None, out_indices=None)
        self.assertEqual(config.out_features, [config.stage_names[-1]])
        self.assertEqual(config.out_indices, [len(config.stage_names) - 1])
        config = self.config_class(out_features=["stem", "stage1"], out_indices=[0, 1])
        self.assertEqual(config.out_features, ["stem", "stage1"])
        self.assertEqual(config.out_indices, [0, 1])
        config = self.config_class(out_features=["stage1", "stage3"])
        self.assertEqual(config.out_features, ["stage1", "stage3"])
        self.assertEqual(config.out_indices, [1, 3])
        config = self.config_class(out_indices=[0, 2])
        self.assertEqual(config.out_features, [config.stage_names[0], config.stage_names[2]])
        self.assertEqual(config.out_indices, [0, 2])
        with self.assertRaises(ValueError):
            self.config_class(out_features=["stage1", "stage2"], out_indices=[0, 2])


# ------------------------------------------------------------------------------------------------ EfficientViT-SAM


class EfficientViTSamModelTester(PixelModelTester):
    """A 4-stage L-style encoder with an 8x8 neck, SAM's prompt encoder and a 2-block mask decoder."""

    def __init__(self, parent, batch_size=2, image_size=128):
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        # EfficientViTSamModel computes no loss (the training scripts compute SAM's mask losses), so transformers'
        # training tests cannot run it; tests/test_gradient_checkpointing.py trains it with and without
        # checkpointing.
        self.is_training = False
        self.widths = [8, 16, 32, 64]
        self.neck_output_size = 8
        self.decoder_layers = 2
        self.vision_config = dict(
            widths=self.widths, depths=[1, 1, 1, 1], block_types=["res", "fmb", "mb", "att"],
            expand_ratios=[1, 2, 2, 2], downsample_expand_ratios=[1, 2, 2, 2], fewer_norm=[False, False, True, True],
            attention_head_dim=8, attention_scales=[3], image_size=image_size, neck_in_features=["stage3", "stage2"],
            neck_hidden_size=32, neck_depth=1, neck_output_size=self.neck_output_size,
        )
        self.prompt_encoder_config = {"hidden_size": 32, "image_size": image_size, "patch_size": 16}
        self.mask_decoder_config = {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2,
                                    "iou_head_hidden_dim": 32, "num_hidden_layers": self.decoder_layers}

    def get_config(self):
        return EfficientViTSamConfig(vision_config=self.vision_config,
                                     prompt_encoder_config=self.prompt_encoder_config,
                                     mask_decoder_config=self.mask_decoder_config)


class EfficientViTSamModelTest(EfficientViTCommonTest, unittest.TestCase):
    model_tester_class = EfficientViTSamModelTester
    all_model_classes = (EfficientViTSamModel,)
    _is_composite = True
    has_attentions = True  # the mask decoder's

    def setUp(self):
        super().setUp()
        self.config_tester = ConfigTester(self, config_class=EfficientViTSamConfig, has_text_modality=False,
                                          common_properties=["initializer_range"])

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_model_without_prompts(self):
        # `SamModel(pixel_values=...)`: masks from the image alone, one prompt set per image.
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        model = EfficientViTSamModel(config).eval()
        with torch.no_grad():
            outputs = model(**inputs)
        side = 4 * self.model_tester.neck_output_size
        self.assertEqual(outputs.iou_scores.shape, (self.model_tester.batch_size, 1, 3))
        self.assertEqual(outputs.pred_masks.shape, (self.model_tester.batch_size, 1, 3, side, side))

    def test_hidden_states_output(self):
        # `vision_hidden_states` are the encoder's stage feature maps (SamModel's are its ViT layers' outputs).
        _test_stage_feature_maps(self, EfficientViTSamModel, "vision_hidden_states")

    def test_attention_outputs(self):
        # As SamModel's test: `mask_decoder_attentions` has one entry per two-way block (its image-to-token
        # attention output, as transformers records it); the linear-attention encoder forms no attention matrix.
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        batch, tokens = self.model_tester.batch_size, self.model_tester.neck_output_size**2
        hidden = self.model_tester.mask_decoder_config["hidden_size"]

        def check(inputs, config):
            model = EfficientViTSamModel(copy.deepcopy(config)).eval()
            with torch.no_grad():
                outputs = model(**inputs)
            self.assertIsNone(outputs.vision_attentions)
            attentions = outputs.mask_decoder_attentions
            self.assertEqual(len(attentions), self.model_tester.decoder_layers)
            self.assertListEqual(list(attentions[0].shape), [batch, 1, tokens, hidden])

        check({**inputs_dict, "output_attentions": True}, config)
        config_with_attentions = copy.deepcopy(config)
        config_with_attentions._attn_implementation = "eager"
        config_with_attentions.output_attentions = True
        check(inputs_dict, config_with_attentions)

    def test_retain_grad_hidden_states_attentions(self):
        # The mixin's test on SamModel's output names (`vision_hidden_states`, `mask_decoder_attentions`).
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        config.output_hidden_states = True
        config._attn_implementation = "eager"
        config.output_attentions = True
        model = EfficientViTSamModel._from_config(config, attn_implementation="eager")
        outputs = model(**inputs_dict)
        hidden_states = outputs.vision_hidden_states[0]
        hidden_states.retain_grad()
        attentions = outputs.mask_decoder_attentions[0]
        attentions.retain_grad()
        outputs[0].flatten()[0].backward(retain_graph=True)
        self.assertIsNotNone(hidden_states.grad)
        self.assertIsNotNone(attentions.grad)

    def test_model_get_set_embeddings(self):
        _test_stem_is_the_input_embedding(self)


# ------------------------------------------------------------------------------------------------ super-resolution


class EfficientViTSRModelTester(PixelModelTester):
    def __init__(self, parent, batch_size=2, image_size=16, upscale=2):
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        self.upscale = upscale
        self.is_training = True
        self.num_blocks = 2
        self.hidden_size = 16

    def get_config(self):
        return EfficientViTSRConfig(upscale=self.upscale, hidden_size=self.hidden_size, num_blocks=self.num_blocks,
                                    attention_head_dim=8)


class EfficientViTSRModelTest(EfficientViTCommonTest, unittest.TestCase):
    model_tester_class = EfficientViTSRModelTester
    all_model_classes = (EfficientViTForImageSuperResolution,)

    def setUp(self):
        super().setUp()
        self.config_tester = ConfigTester(self, config_class=EfficientViTSRConfig, has_text_modality=False,
                                          common_properties=["num_channels", "hidden_size", "num_blocks"],
                                          upscale=2, hidden_size=16, num_blocks=2, attention_head_dim=8)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        # transformers' tables have no labels for image-to-image models; ours trains on high-resolution images
        # (here the input enlarged by pixel repetition: the same labels on every call, as the tables' zeros).
        inputs = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:
            inputs["labels"] = torch.nn.functional.interpolate(inputs["pixel_values"],
                                                               scale_factor=self.model_tester.upscale)
        return inputs

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_hidden_states_output(self):
        # The stem's features and every block's output, all at the input resolution.
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        size, width = self.model_tester.image_size, self.model_tester.hidden_size
        for inputs, flag in (({**inputs_dict, "output_hidden_states": True}, None), (inputs_dict, True)):
            config = copy.deepcopy(config)
            if flag:
                config.output_hidden_states = True
            model = EfficientViTForImageSuperResolution(config).eval()
            with torch.no_grad():
                hidden_states = model(**inputs).hidden_states
            self.assertEqual(len(hidden_states), self.model_tester.num_blocks + 1)
            self.assertListEqual(list(hidden_states[0].shape[-3:]), [width, size, size])

    def test_model_get_set_embeddings(self):
        _test_stem_is_the_input_embedding(self)


def _test_stage_feature_maps(test, model_class, field: str):
    # The hidden states (`field`), asked for by argument and by the config: one map per stage of the tester's
    # `widths`, stage i at stride 2 ** (i + 1).
    config, inputs_dict = test.model_tester.prepare_config_and_inputs_for_common()
    size, widths = test.model_tester.image_size, test.model_tester.widths
    config_with_states = copy.deepcopy(config)
    config_with_states.output_hidden_states = True
    for inputs, model_config in (({**inputs_dict, "output_hidden_states": True}, config),
                                 (inputs_dict, config_with_states)):
        model = model_class(copy.deepcopy(model_config)).eval()
        with torch.no_grad():
            hidden_states = getattr(model(**inputs), field)
        test.assertEqual(len(hidden_states), len(widths))
        for index, (state, width) in enumerate(zip(hidden_states, widths)):
            stride = 2 ** (index + 1)
            test.assertListEqual(list(state.shape[-3:]), [width, size // stride, size // stride])


def _test_stem_is_the_input_embedding(test):
    # Vision models' form of the test (ViT's, SAM's): the input embedding is a module (the stem convolution, which
    # `enable_input_require_grads` hooks), and there is no output embedding.
    config, _ = test.model_tester.prepare_config_and_inputs_for_common()
    for model_class in test.all_model_classes:
        model = model_class(copy.deepcopy(config))
        stem = model.get_input_embeddings()
        test.assertIsInstance(stem, torch.nn.Conv2d)
        test.assertEqual(stem.in_channels, config.num_channels if hasattr(config, "num_channels") else 3)
        test.assertIsNone(model.get_output_embeddings())


# ------------------------------------------------------------------------------------------------ image processors

_IMAGE_PROCESSING = COMMON["test_image_processing_common"]
ImageProcessingTester = _IMAGE_PROCESSING.ImageProcessingTester
ImageProcessingTestMixin = _IMAGE_PROCESSING.ImageProcessingTestMixin
PostProcessSemanticSegmentationTestMixin = _IMAGE_PROCESSING.PostProcessSemanticSegmentationTestMixin
ProcessorTesterMixin = COMMON["test_processing_common"].ProcessorTesterMixin

# transformers asks every model added after 2025-09 for a torchvision image processor besides the PIL one. evit-hf
# cannot ship one: torchvision cannot be installed beside the CPU torch wheel its environments use (the processors
# are PIL-only, `docs/architecture.md`).
NO_TORCHVISION = ("transformers' rule for new models wants a torchvision image processor; torchvision cannot be "
                  "installed beside the CPU torch wheel, so evit-hf's processors are PIL-only (docs/architecture.md)")


class EfficientViTImageProcessingTester(ImageProcessingTester):
    """transformers' tester with our processor as the one (PIL) backend of the model; `processor_kwargs` are the
    tester's defaults for the processor."""

    processor_class = None
    processor_kwargs: dict = {}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **{**copy.deepcopy(self.processor_kwargs), **kwargs})

    def _get_image_processing_classes(self):
        return {"pil": self.processor_class}


class EfficientViTImageProcessingTestBase(ImageProcessingTestMixin):
    @pytest.mark.xfail(strict=True, reason=NO_TORCHVISION)
    def test_new_models_require_torchvision_backend(self):
        super().test_new_models_require_torchvision_backend()


class ClassificationImageProcessingTester(EfficientViTImageProcessingTester):
    processor_class = evit_hf.EfficientViTImageProcessor
    processor_kwargs = {"size": {"shortest_edge": 20}, "crop_size": {"height": 18, "width": 18}}


class ClassificationImageProcessingTest(EfficientViTImageProcessingTestBase, unittest.TestCase):
    image_processor_tester_class = ClassificationImageProcessingTester


class SegmentationImageProcessingTester(EfficientViTImageProcessingTester):
    processor_class = evit_hf.EfficientViTSegImageProcessor
    processor_kwargs = {"num_labels": 5, "size": {"height": 30, "width": 30}}


class SegmentationImageProcessingTest(EfficientViTImageProcessingTestBase, PostProcessSemanticSegmentationTestMixin,
                                      unittest.TestCase):
    image_processor_tester_class = SegmentationImageProcessingTester


class SamImageProcessingTester(EfficientViTImageProcessingTester):
    processor_class = evit_hf.EfficientViTSamImageProcessor
    # The encoder input (`encoder_size`, zero-padded square) is what the model sees; `size` / `pad_size` are the
    # prompt frame, as for every EfficientViT-SAM.
    processor_kwargs = {"encoder_size": 20, "size": {"longest_edge": 40}, "pad_size": {"height": 40, "width": 40}}

    def expected_output_image_shape(self, images):
        return self.num_channels, self.encoder_size, self.encoder_size


class SamImageProcessingTest(EfficientViTImageProcessingTestBase, unittest.TestCase):
    image_processor_tester_class = SamImageProcessingTester


class SuperResolutionImageProcessingTester(EfficientViTImageProcessingTester):
    processor_class = evit_hf.EfficientViTSRImageProcessor
    processor_kwargs = {"do_pad": True, "size_divisor": 8}

    def expected_output_image_shape(self, images):
        # No resizing: a batch is reflect-padded to its largest image, rounded up to `size_divisor`.
        sizes = [(image.height, image.width) if hasattr(image, "height")
                 else image.shape[:2] if isinstance(image, np.ndarray) else image.shape[-2:] for image in images]
        height = max(-(-h // self.size_divisor) * self.size_divisor for h, _ in sizes)
        width = max(-(-w // self.size_divisor) * self.size_divisor for _, w in sizes)
        return self.num_channels, height, width


class SuperResolutionImageProcessingTest(EfficientViTImageProcessingTestBase, unittest.TestCase):
    image_processor_tester_class = SuperResolutionImageProcessingTester


class SamProcessorTest(ProcessorTesterMixin, unittest.TestCase):
    processor_class = evit_hf.EfficientViTSamProcessor

    @classmethod
    def _setup_image_processor(cls):
        return evit_hf.EfficientViTSamImageProcessor(encoder_size=64)
