"""One ONNX I/O specification per task: the traceable graph(s) a model exports as, their input and output
names, dynamic axes and sample inputs. Every exporter (torch.onnx, Optimum, LiteRT, TensorRT) reads these.

Tasks follow Optimum's names: `feature-extraction` (the bare network), `backbone` (the stage feature maps),
`image-classification`, `semantic-segmentation`, `image-to-image` (super-resolution) and `mask-generation`
(EfficientViT-SAM, exported as two graphs: the image encoder and the prompt encoder + mask decoder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.efficientvit import (
    EfficientViTBackbone,
    EfficientViTForImageClassification,
    EfficientViTForImageSuperResolution,
    EfficientViTForSemanticSegmentation,
    EfficientViTModel,
    EfficientViTSamModel,
)

TASKS: dict[str, type[nn.Module]] = {
    "feature-extraction": EfficientViTModel,
    "backbone": EfficientViTBackbone,
    "image-classification": EfficientViTForImageClassification,
    "semantic-segmentation": EfficientViTForSemanticSegmentation,
    "image-to-image": EfficientViTForImageSuperResolution,
    "mask-generation": EfficientViTSamModel,
}

# Sample prompt counts: 2 masks of 3 points each. Tracing with a size of 1 would freeze that axis.
_SAMPLE_PROMPTS, _SAMPLE_POINTS = 2, 3


@dataclass
class ExportGraph:
    """One graph to export: a module whose forward takes `input_names` positionally and returns a tuple in
    the order of `output_names`."""

    name: str
    module: nn.Module
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    # (batch, height, width) -> inputs in `input_names` order; height/width are ignored by fixed-size graphs.
    make_inputs: Callable[[int, int, int], tuple[torch.Tensor, ...]]
    default_size: tuple[int, int]
    fixed_size: bool = False
    # Nodes whose names contain one of these run in fp32 in reduced-precision engines (TensorRT fp16 / INT8).
    fp32_scopes: list[str] = field(default_factory=list)

    def sample_inputs(self, batch: int = 2, size: tuple[int, int] | None = None) -> tuple[torch.Tensor, ...]:
        height, width = size or self.default_size
        return self.make_inputs(batch, height, width)


def task_of(model: nn.Module) -> str:
    """The export task of a model instance (its class, most specific first)."""
    for task, cls in TASKS.items():
        if type(model) is cls:
            return task
    raise ValueError(f"No export task for {type(model).__name__}; known tasks: {', '.join(TASKS)}.")


def check_task(model: nn.Module, task: str | None) -> str:
    """`task`, checked against the model (or inferred from it when `None`), with a clear error."""
    inferred = task_of(model)
    if task is None or task == "auto":
        return inferred
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
    if task != inferred:
        raise ValueError(f"A {type(model).__name__} exports as task {inferred!r}, not {task!r}.")
    return task


class _Outputs(nn.Module):
    """`model(pixel_values=...)` with the named output fields as a tuple."""

    def __init__(self, model: nn.Module, fields: list[str]) -> None:
        super().__init__()
        self.model, self.fields = model, fields

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(pixel_values=pixel_values, return_dict=True)
        return tuple(getattr(outputs, name) for name in self.fields)


class _BackboneFeatures(nn.Module):
    def __init__(self, model: EfficientViTBackbone) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model(pixel_values=pixel_values, return_dict=True).feature_maps)


class SamImageEncoder(nn.Module):
    """EfficientViT-SAM's image encoder: pixels (batch, 3, S, S) -> image embeddings (batch, 256, 64, 64)."""

    def __init__(self, model: EfficientViTSamModel) -> None:
        super().__init__()
        self.vision_encoder = model.vision_encoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision_encoder(pixel_values)


class SamPromptMaskDecoder(nn.Module):
    """Prompt encoder + mask decoder in the convention of Meta's SAM ONNX model, for any number of prompts.

    `input_points` (batch, prompts, points, 2) in the 1024 prompt frame and `input_labels` (batch, prompts,
    points): 1 foreground, 0 background, 2 / 3 the top-left / bottom-right box corner, -1 padding. Unlike
    `EfficientViTSamModel.forward`, no padding point is appended: add a (0, 0) point with label -1 to prompts
    without a box, as with Meta's exported decoder. Returns `iou_scores` (batch, prompts, 3) and
    `pred_masks` (batch, prompts, 3, 256, 256) low-resolution mask logits.
    """

    def __init__(self, model: EfficientViTSamModel) -> None:
        super().__init__()
        self.prompt_encoder, self.mask_decoder = model.prompt_encoder, model.mask_decoder
        self.register_buffer("image_positional_embeddings", model.get_image_wide_positional_embeddings().detach(),
                             persistent=False)

    def forward(
        self, image_embeddings: torch.Tensor, input_points: torch.Tensor, input_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.prompt_encoder
        labels = input_labels.to(torch.int64)
        sparse = encoder._embed_points(input_points, labels, pad=False)
        # transformers embeds boxes separately; here they are two labelled corners, as in Meta's ONNX model.
        for label, embed in ((2, encoder.point_embed[2]), (3, encoder.point_embed[3])):
            sparse = torch.where((labels == label)[..., None], sparse + embed.weight[None, None], sparse)
        batch, size = image_embeddings.shape[0], image_embeddings.shape[-2:]
        dense = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, size[0], size[1])
        positional = self.image_positional_embeddings.expand(batch, -1, -1, -1)
        pred_masks, iou_scores = self.mask_decoder(
            image_embeddings=image_embeddings,
            image_positional_embeddings=positional,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )[:2]
        return iou_scores, pred_masks


def _pixels(channels: int) -> Callable[[int, int, int], tuple[torch.Tensor, ...]]:
    def make(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
        generator = torch.Generator().manual_seed(batch * 7919 + height * 31 + width)
        return (torch.randn(batch, channels, height, width, generator=generator),)

    return make


_IMAGE_AXES = {0: "batch_size", 2: "height", 3: "width"}


def export_graphs(model: nn.Module, task: str | None = None, size: tuple[int, int] | None = None) -> list[ExportGraph]:
    """The graph(s) `model` exports as for `task` (inferred when `None`), in eval mode.

    `size` is the (height, width) of the sample inputs; dynamic axes make the graphs take other sizes
    (batch, height, width; the number of prompts and points for SAM's decoder).
    """
    task = check_task(model, task)
    model.eval()
    config = model.config
    attention = ["attention"]  # LiteMLA / token mixers: the fp32 scopes of reduced-precision engines
    if task == "mask-generation":
        resolution = config.encoder_image_size
        embedding = config.prompt_encoder_config.image_embedding_size
        hidden = config.prompt_encoder_config.hidden_size
        prompt_size = config.prompt_image_size

        def decoder_inputs(batch: int, height: int, width: int) -> tuple[torch.Tensor, ...]:
            generator = torch.Generator().manual_seed(batch)
            embeddings = torch.randn(batch, hidden, embedding, embedding, generator=generator)
            points = torch.rand(batch, _SAMPLE_PROMPTS, _SAMPLE_POINTS, 2, generator=generator) * prompt_size
            labels = torch.tensor([1, 0, -1]).repeat(batch, _SAMPLE_PROMPTS, 1)
            return embeddings, points, labels

        return [
            ExportGraph(
                "vision_encoder", SamImageEncoder(model).eval(), ["pixel_values"], ["image_embeddings"],
                {"pixel_values": {0: "batch_size"}, "image_embeddings": {0: "batch_size"}},
                _pixels(3), (resolution, resolution), fixed_size=True, fp32_scopes=attention + ["norm"],
            ),
            ExportGraph(
                "prompt_encoder_mask_decoder", SamPromptMaskDecoder(model).eval(),
                ["image_embeddings", "input_points", "input_labels"], ["iou_scores", "pred_masks"],
                {
                    "image_embeddings": {0: "batch_size"},
                    "input_points": {0: "batch_size", 1: "point_batch_size", 2: "num_points"},
                    "input_labels": {0: "batch_size", 1: "point_batch_size", 2: "num_points"},
                    "iou_scores": {0: "batch_size", 1: "point_batch_size"},
                    "pred_masks": {0: "batch_size", 1: "point_batch_size"},
                },
                decoder_inputs, (embedding, embedding), fixed_size=True,
                fp32_scopes=["attn", "layer_norm", "softmax"],
            ),
        ]
    channels = config.num_channels
    default = size or ((32, 48) if task == "image-to-image" else (224, 224))
    if task == "semantic-segmentation":
        default = size or (256, 512)
    if task == "backbone":
        names = list(model.out_features)
        module: nn.Module = _BackboneFeatures(model)
    else:
        names = {
            "feature-extraction": ["last_hidden_state", "pooler_output"],
            "image-classification": ["logits"],
            "semantic-segmentation": ["logits"],
            "image-to-image": ["reconstruction"],
        }[task]
        module = _Outputs(model, names)
    axes: dict[str, dict[int, str]] = {"pixel_values": dict(_IMAGE_AXES)}
    for name in names:
        axes[name] = {0: "batch_size"} if name in ("logits", "pooler_output") and task != "semantic-segmentation" \
            else {0: "batch_size", 2: f"{name}_height", 3: f"{name}_width"}
    return [ExportGraph("model", module.eval(), ["pixel_values"], names, axes, _pixels(channels), default,
                        fp32_scopes=attention)]
