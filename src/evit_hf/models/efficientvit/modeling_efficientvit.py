"""The EfficientViT network, backbone and image classifier.

Owns the EfficientViT block (a token mixer then an MBConv, both residual), the stage and the encoder that stack
the blocks from an `EfficientViTConfig`, input validation, the glue every model of the family shares
(`EfficientViTFamilyMixin`: pixel input, the original's init, gradient checkpointing, the stem as the input
embeddings and, through `RemoteCodeMixin`, saved folders that carry this package; `InferenceOptimizationMixin`:
`config.optimize_inference` installs the fast path;
`model_output`: transformers' `return_dict` convention) and the `PreTrainedModel` classes `EfficientViTModel`,
`EfficientViTBackbone` and `EfficientViTForImageClassification`.
Imports only torch/transformers and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)
from transformers.utils import ModelOutput

try:
    from transformers.backbone_utils import BackboneMixin
except ImportError:  # transformers 4.57
    from transformers.utils.backbone_utils import BackboneMixin

from .configuration_efficientvit import EfficientViTConfig
from .modeling_efficientvit_blocks import (
    CONV_BLOCKS,
    ConvNormAct,
    DSConv,
    MBConv,
    ResidualBlock,
    capturing_graph,
    checkpoint_keeping_batchnorm_statistics,
    get_activation,
    plain_layout,
)
from .modeling_efficientvit_fastpath import forget_cached_weights, set_inference_optimizations
from .modeling_efficientvit_mixers import build_token_mixer


class EfficientViTBlock(ResidualBlock):
    """Global context (`attention`: the config's token mixer, LiteMLA by default) then local mixing (`local`:
    MBConv), both residual.

    `config` is any config with the token-mixer fields (`TokenMixerFieldsMixin`), `norm_eps` and `hidden_act`.
    `norm_type` is the norm after each branch's last conv: BatchNorm as in the released models, or `None` /
    `"layernorm"`.
    """

    def __init__(self, channels: int, config: EfficientViTConfig, expand_ratio: float, drop_path: float = 0.0,
                 norm_type: str | None = "batchnorm"):
        super().__init__(residual=True, drop_path=drop_path)
        self.attention = build_token_mixer(config.token_mixer, channels, config, norm_type=norm_type)
        self.local = MBConv(channels, channels, 1, expand_ratio, fewer_norm=True, act=config.hidden_act,
                            norm_eps=config.norm_eps, residual=True, drop_path=drop_path, norm_type=norm_type)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.local(super().forward(x))


class EfficientViTStage(nn.Module):
    """One resolution: a stride-2 `downsample` block (the stem conv for stage 0) then residual `blocks`."""

    def __init__(self, config: EfficientViTConfig, index: int, drop_paths: list[float]) -> None:
        super().__init__()
        width, block, act, eps = (config.widths[index], config.block_types[index], config.hidden_act,
                                  config.norm_eps)
        fewer_norm, expand = config.fewer_norm[index], config.expand_ratios[index]
        if index == 0:
            self.downsample = ConvNormAct(config.num_channels, width, 3, 2, act=act, norm_eps=eps)
        else:
            block_cls = MBConv if block == "att" else CONV_BLOCKS[block]
            self.downsample = block_cls(config.widths[index - 1], width, 2, config.downsample_expand_ratios[index],
                                        fewer_norm=fewer_norm, act=act, norm_eps=eps)
        blocks = []
        for drop_path in drop_paths:
            if block == "att":
                blocks.append(EfficientViTBlock(width, config, expand, drop_path))
            elif block == "ds":
                blocks.append(DSConv(width, width, act=act, norm_eps=eps, residual=True, drop_path=drop_path))
            else:
                blocks.append(CONV_BLOCKS[block](width, width, 1, expand, fewer_norm=fewer_norm, act=act,
                                                 norm_eps=eps, residual=True, drop_path=drop_path))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


class EfficientViTEncoder(nn.Module):
    """The stages of the network; returns every stage's output (strides 2, 4, ..., 2**num_stages)."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__()
        # Stochastic depth grows linearly over the blocks after the stem (the original leaves the stem out).
        total = sum(config.depths[1:])
        rates = [config.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages, start = [EfficientViTStage(config, 0, [0.0] * config.depths[0])], 0
        for index in range(1, config.num_stages):
            depth = config.depths[index]
            stages.append(EfficientViTStage(config, index, rates[start : start + depth]))
            start += depth
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def check_pixel_values(pixel_values: torch.Tensor, config: EfficientViTConfig, multiple: int | None = None) -> None:
    """Raise a clear `ValueError` for input the network cannot take (skipped while a graph is captured)."""
    if capturing_graph():
        return
    if not isinstance(pixel_values, torch.Tensor):
        raise ValueError(f"`pixel_values` must be a torch.Tensor, got {type(pixel_values).__name__}.")
    if pixel_values.ndim != 4:
        raise ValueError(f"`pixel_values` must be (batch, channels, height, width), got shape "
                         f"{tuple(pixel_values.shape)}.")
    if not pixel_values.is_floating_point():
        raise ValueError(f"`pixel_values` must be a floating point tensor (normalised pixels), got "
                         f"{pixel_values.dtype}; use the image processor to prepare images.")
    channels, height, width = pixel_values.shape[1:]
    if channels != config.num_channels:
        raise ValueError(f"Expected {config.num_channels} input channels, got {channels} (pixel_values of shape "
                         f"{tuple(pixel_values.shape)}). Convert images to RGB, e.g. with the image processor.")
    if pixel_values.shape[0] == 0:
        raise ValueError("`pixel_values` is an empty batch.")
    if height < config.total_stride or width < config.total_stride:
        raise ValueError(f"Input of {height}x{width} pixels is smaller than the network's total stride "
                         f"{config.total_stride}; resize it to at least {config.total_stride}x{config.total_stride}.")
    if multiple and (height % multiple or width % multiple):
        raise ValueError(f"Input height and width must be multiples of {multiple}, got {height}x{width}; "
                         f"pad or resize the image (the image processor does).")


def init_module_weights(module: nn.Module, std: float) -> None:
    """The original's training init: trunc_normal(std) conv/linear weights, zero biases, unit norms."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
    elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
        if module.weight is not None:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()


class RemoteCodeMixin:
    """`save_pretrained` also writes this flat model package and an `auto_map`, so that the folder loads with
    `trust_remote_code=True` on machines without evit-hf (transformers only copies the saved class's file)."""

    # Auto class -> "module.Class" of the files beside this one; set by each model family.
    hub_auto_map: ClassVar[dict[str, str]] = {}
    # Pipeline task -> `custom_pipelines` entry ({"impl": "module.Class", "pt": [...], "type": ...}), so that
    # `pipeline(task, model=folder, trust_remote_code=True)` finds a pipeline transformers does not ship.
    hub_custom_pipelines: ClassVar[dict[str, dict]] = {}

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        source = Path(__file__).parent
        modules = {path.stem for path in source.glob("*.py") if path.name != "__init__.py"}
        self.config.auto_map = {auto: ref for auto, ref in self.hub_auto_map.items() if ref.split(".")[0] in modules}
        pipelines = {task: {**info, "pt": list(info.get("pt", ()))} for task, info in self.hub_custom_pipelines.items()
                     if info["impl"].split(".")[0] in modules}
        if pipelines:
            self.config.custom_pipelines = pipelines
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            for module in sorted(modules):
                shutil.copyfile(source / f"{module}.py", Path(save_directory) / f"{module}.py")


class EfficientViTFamilyMixin(RemoteCodeMixin):
    """What every `PreTrainedModel` of the family shares: pixel input, the original's training init
    (`init_module_weights`), gradient checkpointing, the stem as the input embeddings, saved folders that carry
    this package (`RemoteCodeMixin`) and `from_pretrained` of released models by name (`pretrained_name_hook`)."""

    main_input_name = "pixel_values"
    input_modalities = ("image",)
    # Units: every conv block and token mixer (`ConvBlock`, `TokenMixer`) and SAM's two-way decoder blocks.
    supports_gradient_checkpointing = True
    # Installed from outside (`import evit_hf`: `evit_hf.hub.released_folder`): name -> local folder for names the
    # Hub does not serve in this format (a released model such as "efficientvit-sam-xl1", whose weights are the
    # authors' checkpoint, converted on first use), None for other names. Unset in a remote-code copy.
    pretrained_name_hook: ClassVar[Callable[[str], str | None] | None] = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        hook = EfficientViTFamilyMixin.pretrained_name_hook
        if hook is not None and isinstance(pretrained_model_name_or_path, str):
            pretrained_model_name_or_path = hook(pretrained_model_name_or_path) or pretrained_model_name_or_path
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        init_module_weights(module, self.config.initializer_range)

    def get_input_embeddings(self) -> nn.Module:
        """The stem convolution, the first layer to see the pixels (a vision model's input embeddings, as SAM's
        patch embedding: `enable_input_require_grads`, which PEFT calls, hooks its output)."""
        return next(module for module in self.modules() if isinstance(module, nn.Conv2d))

    def _set_gradient_checkpointing(self, enable: bool = True, gradient_checkpointing_func: Callable = checkpoint,
                                    **kwargs) -> None:
        """transformers' switch (`gradient_checkpointing_enable()` / `_disable()`), with every unit recomputing
        without a second BatchNorm statistics update (`checkpoint_keeping_batchnorm_statistics`)."""
        super()._set_gradient_checkpointing(enable=enable, gradient_checkpointing_func=gradient_checkpointing_func,
                                            **kwargs)
        for module in self.modules():
            if isinstance(module, GradientCheckpointingLayer):
                module._gradient_checkpointing_func = checkpoint_keeping_batchnorm_statistics(
                    gradient_checkpointing_func, module)


class InferenceOptimizationMixin:
    """`post_init` installs the inference fast path (`modeling_efficientvit_fastpath`) when `optimize_inference`
    of the config that holds the EfficientViT fields says so, `set_inference_optimizations` switches it at run
    time (and in the config, so that it is saved), and `train()` forgets its cached weight transforms."""

    def inference_config(self) -> EfficientViTConfig:
        return self.config

    def post_init(self) -> None:
        super().post_init()
        set_inference_optimizations(self, self.inference_config().optimize_inference)

    def set_inference_optimizations(self, enabled: bool) -> None:
        """Use the inference-optimised graph in eval mode (`optimize_inference`), or the plain one."""
        self.inference_config().optimize_inference = bool(enabled)
        set_inference_optimizations(self, enabled)

    def train(self, mode: bool = True):
        # Training changes the weights; also forgets edits made through `.data`, which bypass version counters.
        if mode:
            forget_cached_weights(self)
        return super().train(mode)


def model_output(output: ModelOutput, return_dict: bool | None, config) -> ModelOutput | tuple:
    """`output`, or (transformers' `return_dict=False` convention) the tuple of its fields that are set;
    `return_dict` defaults to `config.return_dict`."""
    return_dict = config.return_dict if return_dict is None else return_dict
    return output if return_dict else output.to_tuple()


def plain_hidden_states(features: list[torch.Tensor], output_hidden_states: bool | None,
                        config) -> tuple[torch.Tensor, ...] | None:
    """`features` in the default layout as `hidden_states`, or None unless asked for (`output_hidden_states`,
    defaulting to `config.output_hidden_states`)."""
    wanted = config.output_hidden_states if output_hidden_states is None else output_hidden_states
    return tuple(plain_layout(f) for f in features) if wanted else None


class EfficientViTPreTrainedModel(InferenceOptimizationMixin, EfficientViTFamilyMixin, PreTrainedModel):
    """Weight initialisation and loading glue shared by the backbone, classification and segmentation models."""

    hub_auto_map = {
        "AutoConfig": "configuration_efficientvit.EfficientViTConfig",
        "AutoModel": "modeling_efficientvit.EfficientViTModel",
        "AutoBackbone": "modeling_efficientvit.EfficientViTBackbone",
        "AutoModelForImageClassification": "modeling_efficientvit.EfficientViTForImageClassification",
        "AutoModelForSemanticSegmentation": "modeling_efficientvit_seg.EfficientViTForSemanticSegmentation",
    }
    config_class = EfficientViTConfig
    base_model_prefix = "efficientvit"
    _no_split_modules = ["EfficientViTStage"]


class EfficientViTModel(EfficientViTPreTrainedModel):
    """The bare EfficientViT network: stage feature maps and a globally pooled last stage."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__(config)
        self.encoder = EfficientViTEncoder(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) normalised images.
            output_hidden_states: also return every stage's feature map (stem, stage1 ... stageN).

        Returns:
            `last_hidden_state` (the last stage), `pooler_output` (its spatial mean, (batch, channels)) and
            optionally `hidden_states`.
        """
        check_pixel_values(pixel_values, self.config)
        features = self.encoder(pixel_values)
        last = plain_layout(features[-1])
        hidden_states = plain_hidden_states(features, output_hidden_states, self.config)
        output = BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last, pooler_output=last.mean(dim=(2, 3)), hidden_states=hidden_states
        )
        return model_output(output, return_dict, self.config)


class EfficientViTBackbone(BackboneMixin, EfficientViTPreTrainedModel):
    """EfficientViT as a transformers backbone: the feature maps named by `config.out_features`."""

    has_attentions = False

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__(config)
        if hasattr(self, "_init_backbone"):  # transformers 4.57; v5 does it in BackboneMixin.__init__
            self._init_backbone(config)
        self.encoder = EfficientViTEncoder(config)
        self.num_features = list(config.widths)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, return_dict: bool | None = None,
                **kwargs) -> BackboneOutput | tuple:
        check_pixel_values(pixel_values, self.config)
        features = self.encoder(pixel_values)
        maps = tuple(plain_layout(f) for name, f in zip(self.stage_names, features) if name in self.out_features)
        hidden_states = plain_hidden_states(features, output_hidden_states, self.config)
        output = BackboneOutput(feature_maps=maps, hidden_states=hidden_states, attentions=None)
        return model_output(output, return_dict, self.config)


class EfficientViTClassificationHead(nn.Module):
    """1x1 conv (BN, act) -> global average pool -> linear + LayerNorm + act -> dropout -> classifier."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__()
        hidden, features = config.head_widths
        self.conv = ConvNormAct(config.widths[-1], hidden, 1, act=config.hidden_act, norm_eps=config.norm_eps)
        self.fc = nn.Linear(hidden, features, bias=False)
        self.norm = nn.LayerNorm(features, eps=config.norm_eps)
        self.act = get_activation(config.hidden_act)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(features, config.num_labels) if config.num_labels > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean(dim=(2, 3))
        x = self.act(self.norm(self.fc(x)))
        return self.classifier(self.dropout(x))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, config: EfficientViTConfig) -> torch.Tensor:
    """The transformers convention: regression, single-label or multi-label from `config.problem_type`."""
    if config.problem_type is None:
        if config.num_labels == 1:
            config.problem_type = "regression"
        elif config.num_labels > 1 and labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
    if config.problem_type == "single_label_classification":
        if labels.numel() and (labels.min() < 0 or labels.max() >= config.num_labels):
            raise ValueError(f"Labels must lie in [0, {config.num_labels}), got values in "
                             f"[{int(labels.min())}, {int(labels.max())}].")
        return F.cross_entropy(logits.view(-1, config.num_labels), labels.view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class EfficientViTForImageClassification(EfficientViTPreTrainedModel):
    """EfficientViT with the original classification head (`logits` over `config.id2label`)."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__(config)
        self.efficientvit = EfficientViTModel(config)
        self.head = EfficientViTClassificationHead(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs) -> ImageClassifierOutputWithNoAttention | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) normalised images.
            labels: class indices (batch,) for cross-entropy, floats for regression / multi-label.
        """
        outputs = self.efficientvit(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.head(outputs.last_hidden_state)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        output = ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)
        return model_output(output, return_dict, self.config)


__all__ = [
    "EfficientViTBlock",
    "EfficientViTStage",
    "EfficientViTEncoder",
    "EfficientViTPreTrainedModel",
    "EfficientViTModel",
    "EfficientViTBackbone",
    "EfficientViTForImageClassification",
    "EfficientViTFamilyMixin",
    "InferenceOptimizationMixin",
    "RemoteCodeMixin",
    "check_pixel_values",
    "plain_hidden_states",
    "init_module_weights",
    "model_output",
]
