"""EfficientViT building blocks, backbone and image classifier.

Owns the blocks (conv-norm-act, DSConv, MBConv, FusedMBConv, ResBlock, multi-scale ReLU linear attention,
EfficientViT block), the encoder that stacks them from an `EfficientViTConfig`, and the `PreTrainedModel`
classes `EfficientViTModel`, `EfficientViTBackbone` and `EfficientViTForImageClassification`.
Imports only torch/transformers and sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import (
    BackboneOutput,
    BaseModelOutputWithPoolingAndNoAttention,
    ImageClassifierOutputWithNoAttention,
)

try:
    from transformers.backbone_utils import BackboneMixin
except ImportError:  # transformers 4.57
    from transformers.utils.backbone_utils import BackboneMixin

from .configuration_efficientvit import EfficientViTConfig
from .modeling_efficientvit_cpuconv import (
    pointwise_as_gemm_applies,
    pointwise_conv_as_gemm,
    winograd_applies,
    winograd_conv3x3,
    winograd_filter,
)


def get_activation(name: str | None) -> nn.Module:
    """The activation module for a config name (`None` gives the identity)."""
    activations = {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardswish": nn.Hardswish,
        "silu": nn.SiLU,
        "gelu": nn.GELU,
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    }
    if name is None:
        return nn.Identity()
    if name not in activations:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(activations)}.")
    return activations[name]()


# Activations with an in-place functional form: used when no gradient is recorded, saving one pass over memory.
_INPLACE_ACTIVATIONS: dict[type, object] = {
    nn.ReLU: F.relu_,
    nn.ReLU6: lambda x: F.relu6(x, inplace=True),
    nn.Hardswish: lambda x: F.hardswish(x, inplace=True),
    nn.SiLU: lambda x: F.silu(x, inplace=True),
}


# GELU's tanh form as 0.5 x (1 + tanh(u)) == x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3): the same
# function (fp32 rounding apart), computed with a sigmoid, which CPUs evaluate about 3x faster than tanh.
_GELU_TANH_LINEAR = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_TANH_CUBIC = _GELU_TANH_LINEAR * 0.044715


def gelu_tanh_(x: torch.Tensor) -> torch.Tensor:
    """GELU (tanh approximation) of `x`, written into `x`; for inference (no autograd)."""
    gate = torch.addcmul(x.new_full((), _GELU_TANH_LINEAR), x, x, value=_GELU_TANH_CUBIC)
    return x.mul_(gate.mul_(x).sigmoid_())


def _can_overwrite() -> bool:
    """In-place updates of our own intermediates are safe: no autograd, and no tracer (the TorchScript ONNX
    exporter mistranslates in-place activations and adds, so exported graphs would compute something else)."""
    return not (torch.is_grad_enabled() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())


def activate(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`act(x)`, overwriting `x` when no gradient is recorded and `x` is a fresh intermediate of ours."""
    if not _can_overwrite():
        return act(x)
    inplace = _INPLACE_ACTIVATIONS.get(type(act))
    if inplace is not None:
        return inplace(x)
    if type(act) is nn.GELU:
        return gelu_tanh_(x) if act.approximate == "tanh" else torch.ops.aten.gelu_(x)
    return act(x)


def residual_add(x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """`x + branch`, accumulating into `branch` (a fresh intermediate) when no gradient is recorded."""
    if not _can_overwrite() or branch.shape != x.shape or branch.dtype != x.dtype:
        return x + branch
    return branch.add_(x)


# oneDNN's fused convolution (the kernel torch.compile uses for conv + activation on CPU): the activation is
# applied as the conv writes its output, saving a pass over memory. Unary post-op names per activation.
_ONEDNN_POST_OPS: dict[type, tuple[str, list, str]] = {
    nn.Identity: ("none", [], ""),
    nn.ReLU: ("relu", [], ""),
    nn.ReLU6: ("hardtanh", [0.0, 6.0], ""),
    nn.Hardswish: ("hardswish", [], ""),
    nn.SiLU: ("swish", [], ""),
}


def _onednn_post_op(act: nn.Module) -> tuple[str, list, str] | None:
    if type(act) is nn.GELU:  # oneDNN's tanh GELU is slower than the conv and `gelu_tanh_` apart
        return ("gelu", [], "none") if act.approximate == "none" else None
    return _ONEDNN_POST_OPS.get(type(act))


def _onednn_fused_conv_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


_ONEDNN_FUSED_CONV = _onednn_fused_conv_available()


def _use_onednn_fused_conv(x: torch.Tensor) -> bool:
    """Eager fp32 CPU inference only: tracing, export and compilation see the plain aten graph."""
    return (
        _ONEDNN_FUSED_CONV
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


def fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the single conv that computes `norm(conv(x))` with `norm`'s running statistics."""
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype)
    shift = norm.bias - norm.running_mean * scale
    bias = shift if conv.bias is None else shift + conv.bias * scale
    return weight, bias.to(conv.weight.dtype)


class DropPath(nn.Module):
    """Stochastic depth: drops the residual branch of whole samples during training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.drop_prob}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (batch, channels, height, width) map; statistics per pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


# Norms a block may place after its convs. BatchNorm is what every released model uses; the channel
# LayerNorm serves models (super-resolution) that must not depend on batch statistics.
NORM_TYPES = ("batchnorm", "layernorm")


def get_norm(norm_type: str | None, channels: int, eps: float) -> nn.Module:
    """The norm module for a name (`None` gives the identity)."""
    if norm_type is None:
        return nn.Identity()
    if norm_type == "batchnorm":
        return nn.BatchNorm2d(channels, eps=eps)
    if norm_type == "layernorm":
        return LayerNorm2d(channels, eps=eps)
    raise ValueError(f"Unknown norm type {norm_type!r}; expected one of {NORM_TYPES} or None.")


class ConvNormAct(nn.Module):
    """Conv2d ("same" padding) -> optional norm (BatchNorm2d unless `norm_type` says otherwise) -> optional act.

    In eval mode with `fold_norm` (set by the model from `config.optimize_inference`), a BatchNorm is folded
    into the conv: one pass over memory instead of two, the same result to fp32 rounding.
    """

    fold_norm: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        use_norm: bool = True,
        act: str | None = None,
        norm_eps: float = 1e-5,
        norm_type: str = "batchnorm",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=bias
        )
        self.norm = get_norm(norm_type, out_channels, norm_eps) if use_norm else nn.Identity()
        self.act = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A wrapped conv (e.g. a PEFT LoRA layer) computes more than its weight says: nothing to fold.
        if not self.fold_norm or self.training or type(self.conv) is not nn.Conv2d:
            return self.act(self.norm(self.conv(x)))
        if not isinstance(self.norm, (nn.BatchNorm2d, nn.Identity)):
            return activate(self.act, self.norm(self.conv(x)))
        conv = self.conv
        weight, bias = self._fold()
        if not _use_onednn_fused_conv(x):
            return activate(self.act, conv._conv_forward(x, weight, bias))
        if winograd_applies(conv, x):
            return activate(self.act, winograd_conv3x3(x, self._winograd_filters(weight), bias))
        if pointwise_as_gemm_applies(conv, x):
            return activate(self.act, pointwise_conv_as_gemm(x, weight, bias))
        post_op = _onednn_post_op(self.act)
        if post_op is not None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups, *post_op
            )
        return activate(self.act, conv._conv_forward(x, weight, bias))

    def train(self, mode: bool = True) -> ConvNormAct:
        # Training changes the weights; also forgets edits made through `.data`, which bypass version counters.
        if mode:
            self.__dict__.pop("_winograd_cache", None)
        return super().train(mode)

    def _fold(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(self.norm, nn.BatchNorm2d):
            return fold_batchnorm(self.conv, self.norm)
        return self.conv.weight, self.conv.bias

    def _winograd_filters(self, weight: torch.Tensor) -> torch.Tensor:
        """`winograd_filter(weight)` of the folded `weight` (no-grad inference only), computed once per parameter
        state: the identity and in-place version of every tensor it derives from, which any load, optimiser step
        or `.to()` changes. Unlike folding (a pass over the weights), the transform costs as much as a small conv."""
        tensors = [t for t in (self.conv.weight, self.conv.bias, *self.norm.parameters(), *self.norm.buffers())
                   if t is not None]
        if any(t.is_inference() for t in tensors):  # made under inference_mode: no version counter to watch
            return winograd_filter(weight)
        state = tuple((t.data_ptr(), t._version, t.dtype) for t in tensors)
        cache = self.__dict__.get("_winograd_cache")
        if cache is None or cache[0] != state:
            cache = self.__dict__["_winograd_cache"] = (state, winograd_filter(weight))
        return cache[1]


class ResidualBlock(nn.Module):
    """Base of the convolutional blocks: `x + drop_path(f(x))` when `residual`, else `f(x)`."""

    def __init__(self, residual: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.residual = residual
        self.drop_path = DropPath(drop_path) if residual and drop_path > 0 else nn.Identity()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return residual_add(x, self.drop_path(out)) if self.residual else out


class DSConv(ResidualBlock):
    """Depthwise-separable conv: depthwise kxk (BN, act) -> pointwise 1x1 (BN)."""

    def __init__(self, in_channels, out_channels, stride=1, act="hardswish", norm_eps=1e-5,
                 residual=False, drop_path=0.0) -> None:
        super().__init__(residual, drop_path)
        self.depthwise_conv = ConvNormAct(in_channels, in_channels, 3, stride, groups=in_channels, act=act,
                                          norm_eps=norm_eps)
        self.pointwise_conv = ConvNormAct(in_channels, out_channels, 1, norm_eps=norm_eps)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class MBConv(ResidualBlock):
    """Inverted bottleneck: 1x1 expand (act) -> depthwise kxk (act) -> 1x1 project (BN).

    With `fewer_norm` the first two convs have a bias and no BatchNorm (the original's "fewer_norm").
    `norm_type` picks the norm of the convs that have one; `None` drops every norm and gives each conv a bias.
    """

    def __init__(self, in_channels, out_channels, stride=1, expand_ratio=4.0, fewer_norm=False,
                 act="hardswish", norm_eps=1e-5, residual=False, drop_path=0.0,
                 norm_type: str | None = "batchnorm") -> None:
        super().__init__(residual, drop_path)
        mid = round(in_channels * expand_ratio)
        inner_norm = not fewer_norm and norm_type is not None
        norm = {"norm_eps": norm_eps, "norm_type": norm_type or "batchnorm"}
        self.expand_conv = ConvNormAct(in_channels, mid, 1, bias=not inner_norm, use_norm=inner_norm, act=act,
                                       **norm)
        self.depthwise_conv = ConvNormAct(mid, mid, 3, stride, groups=mid, bias=not inner_norm,
                                          use_norm=inner_norm, act=act, **norm)
        self.pointwise_conv = ConvNormAct(mid, out_channels, 1, bias=norm_type is None,
                                          use_norm=norm_type is not None, **norm)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(self.expand_conv(x)))


class FusedMBConv(ResidualBlock):
    """Fused inverted bottleneck: kxk expand (act) -> 1x1 project (BN)."""

    def __init__(self, in_channels, out_channels, stride=1, expand_ratio=4.0, fewer_norm=False,
                 act="hardswish", norm_eps=1e-5, residual=False, drop_path=0.0) -> None:
        super().__init__(residual, drop_path)
        mid = round(in_channels * expand_ratio)
        self.spatial_conv = ConvNormAct(in_channels, mid, 3, stride, bias=fewer_norm, use_norm=not fewer_norm,
                                        act=act, norm_eps=norm_eps)
        self.pointwise_conv = ConvNormAct(mid, out_channels, 1, norm_eps=norm_eps)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.spatial_conv(x))


class ResBlock(ResidualBlock):
    """Two kxk convs: conv1 (act) -> conv2 (BN)."""

    def __init__(self, in_channels, out_channels, stride=1, expand_ratio=1.0, fewer_norm=False,
                 act="hardswish", norm_eps=1e-5, residual=False, drop_path=0.0) -> None:
        super().__init__(residual, drop_path)
        mid = round(in_channels * expand_ratio)
        self.conv1 = ConvNormAct(in_channels, mid, 3, stride, bias=fewer_norm, use_norm=not fewer_norm, act=act,
                                 norm_eps=norm_eps)
        self.conv2 = ConvNormAct(mid, out_channels, 3, norm_eps=norm_eps)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


def _autocast_disabled(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """A context that turns autocast off on `x`'s device, or a no-op where autocast is not active."""
    device_type = x.device.type
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def relu_linear_attention(qkv: torch.Tensor, head_dim: int, eps: float) -> torch.Tensor:
    """ReLU linear attention over all pixels, in fp32 whatever the input dtype or autocast state.

    `qkv` is (B, heads * 3 * head_dim, H, W) with each head's channels ordered [q | k | v] (the original
    layout). Per head, with q, k after ReLU: `out_n = sum_m v_m (k_m . q_n) / (sum_m k_m . q_n + eps)`.
    The denominator uses the key sum directly instead of the original's padding of V with a row of ones,
    and one path serves every map size, so export tracing cannot freeze a size-dependent branch.
    """
    batch, _, height, width = qkv.shape
    with _autocast_disabled(qkv):
        tokens = qkv.float().reshape(batch, -1, 3 * head_dim, height * width)
        q, k, v = tokens.split(head_dim, dim=2)  # each (B, heads, d, N)
        q, k = F.relu(q), F.relu(k)
        kv = v @ k.transpose(-1, -2)  # (B, heads, d, d)
        numerator = kv @ q  # (B, heads, d, N)
        denominator = k.sum(dim=-1, keepdim=True).transpose(-1, -2) @ q  # (B, heads, 1, N)
        out = numerator / (denominator + eps)
    return out.to(qkv.dtype).reshape(batch, -1, height, width)


def layout_like(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`out` in `x`'s channels-last layout when `x` has it: global mixers compute on token matrices and hand
    back the default layout, which would make every later conv, up to the model's output, run (and reorder)
    in the slower default layout."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return out
    return out.contiguous(memory_format=torch.channels_last)


def _exporting() -> bool:
    """True while a graph is captured for export (TorchScript/ONNX tracing, `torch.export`)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def _cubic(distance: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel with PyTorch's a = -0.75."""
    d = abs(distance)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return 0.0


def upsample_bicubic_as_conv(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Exact bicubic upsampling (align_corners=False) by an integer `factor`, as edge padding, one depthwise
    5x5 conv with `factor**2` output phases per channel and a pixel shuffle.

    Output pixel `factor * i + p` reads input pixels `i - 2 ... i + 2` with weights that depend only on the
    phase `p`, and the edge padding reproduces PyTorch's clamped border reads. Export graphs use it: ONNX
    Runtime's cubic Resize is over 10x slower than this conv, and TFLite has no bicubic resize at all.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # traced: the channel count is fixed by the weights
        channels = int(x.shape[1])
    taps = torch.tensor(
        [[_cubic((phase + 0.5) / factor - 0.5 - offset) for offset in range(-2, 3)] for phase in range(factor)],
        dtype=torch.float32,
    )
    kernel = (taps[:, None, :, None] * taps[None, :, None, :]).reshape(factor * factor, 1, 5, 5)
    kernel = kernel.repeat(channels, 1, 1, 1).to(device=x.device, dtype=x.dtype)
    phases = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=channels)
    return F.pixel_shuffle(phases, factor)


def _integer_factor(x: torch.Tensor, size) -> int | None:
    """The common integer upsampling factor from `x`'s size to `size`, if there is one (fixed at trace time:
    the ratio of two strides of the network)."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    out_height, out_width = int(size[0]), int(size[1])
    if out_height % height or out_width % width or out_height // height != out_width // width:
        return None
    factor = out_height // height
    return factor if factor > 1 else None


def resize_bicubic(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Bicubic resize (align_corners=False) to `size`, computed in fp32 with autocast off, cast back.

    Returns `x` itself when it already has that size (bicubic resizing to the same size is the identity).
    Export graphs compute integer upsampling with `upsample_bicubic_as_conv` (the same values) and keep
    traced sizes symbolic, so that they take other input sizes.
    """
    if _exporting():
        if x.shape[-2:] == tuple(size):  # structural: a map resized to its own size, at every input size
            return x
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the factor is a ratio of strides: constant for every input size
            factor = _integer_factor(x, size)
        if factor is not None:
            return upsample_bicubic_as_conv(x.float(), factor).to(x.dtype)
        return F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False).to(x.dtype)
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    with _autocast_disabled(x):
        out = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False)
    return out.to(x.dtype)


class MultiScaleAggregation(nn.Module):
    """Aggregates neighbouring tokens of q, k and v: depthwise kxk conv, then a grouped 1x1 conv per head."""

    def __init__(self, channels: int, kernel_size: int, heads: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels,
                                   bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, groups=3 * heads, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class LiteMultiScaleAttention(nn.Module):
    """Lightweight multi-scale ReLU linear attention (the original's LiteMLA).

    1x1 conv to per-head [q|k|v], extra q/k/v sets from multi-scale aggregation (each set of heads attends
    on its own), ReLU linear attention, 1x1 projection with BatchNorm (`norm_type`: another norm, or `None`
    for a projection with a bias and no norm).
    """

    def __init__(self, in_channels: int, out_channels: int, head_dim: int, heads_ratio: float = 1.0,
                 scales: tuple[int, ...] | list[int] = (5,), eps: float = 1e-15, norm_eps: float = 1e-5,
                 norm_type: str | None = "batchnorm") -> None:
        super().__init__()
        self.head_dim = head_dim
        self.eps = eps
        heads = int(in_channels // head_dim * heads_ratio)
        total = heads * head_dim
        self.qkv = ConvNormAct(in_channels, 3 * total, 1, use_norm=False)
        self.aggregations = nn.ModuleList(MultiScaleAggregation(3 * total, s, heads) for s in scales)
        self.proj = ConvNormAct(total * (1 + len(scales)), out_channels, 1, bias=norm_type is None,
                                use_norm=norm_type is not None, norm_eps=norm_eps,
                                norm_type=norm_type or "batchnorm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        if len(self.aggregations):
            qkv = torch.cat([qkv, *(aggregate(qkv) for aggregate in self.aggregations)], dim=1)
        return self.proj(layout_like(relu_linear_attention(qkv, self.head_dim, self.eps), x))


class EfficientViTBlock(nn.Module):
    """Global context (multi-scale linear attention) then local mixing (MBConv), both residual.

    `config` is any config with the attention fields of `EfficientViTConfig` (`attention_head_dim`,
    `attention_heads_ratio`, `attention_scales`, `attention_eps`, `norm_eps`, `hidden_act`). `norm_type` is
    the norm after each branch's last conv: BatchNorm as in the released models, or `None` / `"layernorm"`.
    """

    def __init__(self, channels: int, config: EfficientViTConfig, expand_ratio: float, drop_path: float = 0.0,
                 norm_type: str | None = "batchnorm"):
        super().__init__()
        token_mixer = getattr(config, "token_mixer", "lite_mla")  # configs without the field (SR) mean LiteMLA
        if token_mixer == "lite_mla":
            self.attention = LiteMultiScaleAttention(
                channels, channels, config.attention_head_dim, config.attention_heads_ratio,
                config.attention_scales, config.attention_eps, config.norm_eps, norm_type=norm_type,
            )
        else:  # imported here: the mixers module builds on this module's blocks
            from .modeling_efficientvit_mixers import build_token_mixer

            self.attention = build_token_mixer(token_mixer, channels, config, norm_type=norm_type)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.local = MBConv(channels, channels, 1, expand_ratio, fewer_norm=True, act=config.hidden_act,
                            norm_eps=config.norm_eps, residual=True, drop_path=drop_path, norm_type=norm_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = residual_add(x, self.drop_path(self.attention(x)))
        return self.local(x)


_CONV_BLOCKS = {"mb": MBConv, "fmb": FusedMBConv, "res": ResBlock}


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
            block_cls = MBConv if block == "att" else _CONV_BLOCKS[block]
            self.downsample = block_cls(config.widths[index - 1], width, 2, config.downsample_expand_ratios[index],
                                        fewer_norm=fewer_norm, act=act, norm_eps=eps)
        blocks = []
        for drop_path in drop_paths:
            if block == "att":
                blocks.append(EfficientViTBlock(width, config, expand, drop_path))
            elif block == "ds":
                blocks.append(DSConv(width, width, act=act, norm_eps=eps, residual=True, drop_path=drop_path))
            else:
                blocks.append(_CONV_BLOCKS[block](width, width, 1, expand, fewer_norm=fewer_norm, act=act,
                                                  norm_eps=eps, residual=True, drop_path=drop_path))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


class EfficientViTEncoder(nn.Module):
    """The stages of the network; returns every stage's output (strides 2, 4, ..., 2**num_stages).

    With `channels_last` (set from `config.optimize_inference`), eval-mode CPU inputs are laid out
    channels-last, which oneDNN's convolutions run faster; every later op keeps that layout.
    """

    channels_last: bool = False

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
        if self.channels_last and not self.training and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def set_inference_optimizations(module: nn.Module, enabled: bool) -> None:
    """Switch the eval-mode optimisations of `config.optimize_inference` on or off in every submodule."""
    for submodule in module.modules():
        if isinstance(submodule, ConvNormAct):
            submodule.fold_norm = bool(enabled)
            submodule.__dict__.pop("_winograd_cache", None)
        elif isinstance(submodule, EfficientViTEncoder):
            submodule.channels_last = bool(enabled)


def plain_layout(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """`tensor` in the default (contiguous) layout: what the models hand back, whatever they computed in."""
    return None if tensor is None else tensor.contiguous()


def check_pixel_values(pixel_values: torch.Tensor, config: EfficientViTConfig, multiple: int | None = None) -> None:
    """Raise a clear `ValueError` for input the network cannot take (skipped while tracing for export)."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
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


class InferenceOptimizationMixin:
    """`post_init` applies `optimize_inference` of the config that holds the EfficientViT fields, and
    `set_inference_optimizations` switches it at run time (and in the config, so that it is saved)."""

    def inference_config(self) -> EfficientViTConfig:
        return self.config

    def post_init(self) -> None:
        super().post_init()
        set_inference_optimizations(self, getattr(self.inference_config(), "optimize_inference", True))

    def set_inference_optimizations(self, enabled: bool) -> None:
        """Use the inference-optimised graph in eval mode (`optimize_inference`), or the plain one."""
        self.inference_config().optimize_inference = bool(enabled)
        set_inference_optimizations(self, enabled)


class EfficientViTPreTrainedModel(InferenceOptimizationMixin, RemoteCodeMixin, PreTrainedModel):
    """Weight initialisation and loading glue shared by every EfficientViT model."""

    hub_auto_map = {
        "AutoConfig": "configuration_efficientvit.EfficientViTConfig",
        "AutoModel": "modeling_efficientvit.EfficientViTModel",
        "AutoBackbone": "modeling_efficientvit.EfficientViTBackbone",
        "AutoModelForImageClassification": "modeling_efficientvit.EfficientViTForImageClassification",
        "AutoModelForSemanticSegmentation": "modeling_efficientvit_seg.EfficientViTForSemanticSegmentation",
    }
    config_class = EfficientViTConfig
    base_model_prefix = "efficientvit"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["EfficientViTStage"]

    def _init_weights(self, module: nn.Module) -> None:
        init_module_weights(module, self.config.initializer_range)



class EfficientViTModel(EfficientViTPreTrainedModel):
    """The bare EfficientViT network: stage feature maps and a globally pooled last stage."""

    def __init__(self, config: EfficientViTConfig) -> None:
        super().__init__(config)
        self.encoder = EfficientViTEncoder(config)
        self.post_init()

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) normalised images.
            output_hidden_states: also return every stage's feature map (stage0 ... stageN).

        Returns:
            `last_hidden_state` (the last stage), `pooler_output` (its spatial mean, (batch, channels)) and
            optionally `hidden_states`.
        """
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_pixel_values(pixel_values, self.config)
        features = self.encoder(pixel_values)
        last = plain_layout(features[-1])
        pooled = last.mean(dim=(2, 3))
        hidden_states = tuple(plain_layout(f) for f in features) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (last, pooled, hidden_states) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=last, pooler_output=pooled, hidden_states=hidden_states
        )


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

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BackboneOutput | tuple:
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        check_pixel_values(pixel_values, self.config)
        features = self.encoder(pixel_values)
        maps = tuple(plain_layout(f) for name, f in zip(self.stage_names, features) if name in self.out_features)
        hidden_states = tuple(plain_layout(f) for f in features) if output_hidden_states else None
        if not return_dict:
            return (maps,) + ((hidden_states,) if hidden_states is not None else ())
        return BackboneOutput(feature_maps=maps, hidden_states=hidden_states, attentions=None)


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

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageClassifierOutputWithNoAttention | tuple:
        """
        Args:
            pixel_values: (batch, channels, height, width) normalised images.
            labels: class indices (batch,) for cross-entropy, floats for regression / multi-label.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.efficientvit(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        logits = self.head(outputs.last_hidden_state)
        loss = classification_loss(logits, labels, self.config) if labels is not None else None
        if not return_dict:
            out = (logits,) + ((outputs.hidden_states,) if outputs.hidden_states is not None else ())
            return ((loss,) + out) if loss is not None else out
        return ImageClassifierOutputWithNoAttention(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = [
    "ConvNormAct",
    "LayerNorm2d",
    "DSConv",
    "MBConv",
    "FusedMBConv",
    "ResBlock",
    "LiteMultiScaleAttention",
    "EfficientViTBlock",
    "EfficientViTPreTrainedModel",
    "EfficientViTModel",
    "EfficientViTBackbone",
    "EfficientViTForImageClassification",
    "relu_linear_attention",
    "fold_batchnorm",
    "set_inference_optimizations",
]
