"""EfficientViT's building blocks: what every model of the family is assembled from.

Owns the activations and norms a config names, `ConvNormAct` (conv -> norm -> activation), the convolutional
blocks (`DSConv`, `MBConv`, `FusedMBConv`, `ResBlock`) on a common `ResidualBlock`, each one a unit of gradient
checkpointing (`ConvBlock`, with `checkpoint_keeping_batchnorm_statistics`), `DropPath`, the fp32 island
(`autocast_disabled`: attention and resizing run in fp32 with autocast off), memory-format helpers, bicubic
resizing (including the exact bicubic-as-conv that export graphs use), and the two tests for "a graph is being
recorded": `capturing_graph` (tracing, ONNX export, torch.export, torch.compile) and its export subset
`exporting_graph` (all but torch.compile).

Every forward here is the plain computation; the CPU fast path (`modeling_efficientvit_fastpath.py`) is
installed onto these modules from outside. Imports only torch and transformers' `GradientCheckpointingLayer`, so
it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer


def exporting_graph() -> bool:
    """True while a graph is recorded for another runtime: TorchScript tracing (also under the TorchScript ONNX
    exporter) and torch.export. Such graphs compute resizing in the ops every export target runs well."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def capturing_graph() -> bool:
    """True while any graph is recorded instead of run: `exporting_graph()` or torch.compile. Recorded graphs skip
    input validation and eager-only work (in-place updates, cached weight transforms, oneDNN calls); torch.compile
    keeps the eager formulations otherwise (its graphs break on the export ones' warning filters)."""
    return exporting_graph() or torch.compiler.is_compiling()


def autocast_disabled(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """The fp32 island: a context that turns autocast off on `x`'s device (a no-op where it is not active).
    Attention, long convolutions and resizing compute inside it on `x.float()` and cast back."""
    device_type = x.device.type
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------------ layout


def layout_like(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`out` in `x`'s channels-last layout when `x` has it: global mixers compute on token matrices and hand
    back the default layout, which would make every later conv, up to the model's output, run (and reorder)
    in the slower default layout."""
    if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
        return out
    return out.contiguous(memory_format=torch.channels_last)


def plain_layout(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """`tensor` in the default (contiguous) layout: what the models hand back, whatever they computed in."""
    return None if tensor is None else tensor.contiguous()


# ------------------------------------------------------------------------------------------------ activations, norms


_ACTIVATIONS = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


def get_activation(name: str | None) -> nn.Module:
    """The activation module for a config name (`None` gives the identity)."""
    if name is None:
        return nn.Identity()
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


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


# ------------------------------------------------------------------------------------------------ conv blocks


class ConvNormAct(nn.Module):
    """Conv2d ("same" padding) -> optional norm (BatchNorm2d unless `norm_type` says otherwise) -> optional act."""

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
        return self.act(self.norm(self.conv(x)))


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


class ResidualBlock(nn.Module):
    """Base of the blocks with a residual branch: `x + drop_path(branch(x))` when `residual`, else `branch(x)`."""

    def __init__(self, residual: bool, drop_path: float = 0.0) -> None:
        super().__init__()
        self.residual = residual
        self.drop_path = DropPath(drop_path) if residual and drop_path > 0 else nn.Identity()

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def add_residual(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        """`x + branch` (the fast path accumulates into `branch` instead)."""
        return x + branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        return self.add_residual(x, self.drop_path(out)) if self.residual else out


class ConvBlock(GradientCheckpointingLayer, ResidualBlock):
    """Base of the convolutional blocks: a residual block that is one unit of gradient checkpointing.

    With `model.gradient_checkpointing_enable()` (transformers' `GradientCheckpointingLayer`) a training forward
    keeps only each block's input and recomputes its activations in the backward pass. The token mixers are
    units too, so an EfficientViT block (a mixer then an MBConv) is two units and no unit is nested in another.
    """


@contextlib.contextmanager
def _batchnorm_statistics_frozen(norms: list[nn.modules.batchnorm._BatchNorm]):
    """Training-mode BatchNorms that normalise with the batch statistics but leave their running statistics as
    they are: momentum 0 makes the in-place update `(1 - 0) * running + 0 * batch`, the same values (the buffers
    cannot be restored by copying: autograd saved them at their current version), and the batch count is put
    back."""
    saved = [(norm, norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, momentum, count in saved:
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


def checkpoint_keeping_batchnorm_statistics(checkpoint: Callable, layer: nn.Module) -> Callable:
    """`checkpoint` (torch's checkpoint with the model's settings) for `layer`, recomputing the layer's forward in
    the backward pass without updating its BatchNorm running statistics a second time: a checkpointed training
    step leaves the running statistics of a plain one (torch's checkpoint alone would apply the momentum twice)."""
    norms = [m for m in layer.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return checkpoint

    def checkpoint_layer(function: Callable, *args, **kwargs):
        runs = 0

        def run(*run_args, **run_kwargs):
            nonlocal runs
            runs += 1
            if runs == 1:  # the forward pass
                return function(*run_args, **run_kwargs)
            with _batchnorm_statistics_frozen(norms):  # the recomputation
                return function(*run_args, **run_kwargs)

        return checkpoint(run, *args, **kwargs)

    return checkpoint_layer


class DSConv(ConvBlock):
    """Depthwise-separable conv: depthwise kxk (BN, act) -> pointwise 1x1 (BN)."""

    def __init__(self, in_channels, out_channels, stride=1, act="hardswish", norm_eps=1e-5,
                 residual=False, drop_path=0.0) -> None:
        super().__init__(residual, drop_path)
        self.depthwise_conv = ConvNormAct(in_channels, in_channels, 3, stride, groups=in_channels, act=act,
                                          norm_eps=norm_eps)
        self.pointwise_conv = ConvNormAct(in_channels, out_channels, 1, norm_eps=norm_eps)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class MBConv(ConvBlock):
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


class FusedMBConv(ConvBlock):
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


class ResBlock(ConvBlock):
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


# Block types of the config's `block_types` that are plain conv blocks (stride-1 blocks and downsampling).
CONV_BLOCKS: dict[str, type[ConvBlock]] = {"mb": MBConv, "fmb": FusedMBConv, "res": ResBlock}


# ------------------------------------------------------------------------------------------------ resizing


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
    if exporting_graph():
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
    with autocast_disabled(x):
        out = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False)
    return out.to(x.dtype)


def bicubic_upscale(pixel_values: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by an integer `scale` (align_corners=False, no antialiasing), in fp32 with autocast
    off. Returns fp32 whatever the input dtype (the base a super-resolution prediction is added to)."""
    if exporting_graph():
        return upsample_bicubic_as_conv(pixel_values.float(), scale)
    height, width = pixel_values.shape[-2:]
    with autocast_disabled(pixel_values):
        return F.interpolate(pixel_values.float(), size=(height * scale, width * scale), mode="bicubic",
                             align_corners=False)


__all__ = [
    "CONV_BLOCKS",
    "ConvBlock",
    "ConvNormAct",
    "DSConv",
    "DropPath",
    "FusedMBConv",
    "LayerNorm2d",
    "MBConv",
    "NORM_TYPES",
    "ResBlock",
    "ResidualBlock",
    "autocast_disabled",
    "bicubic_upscale",
    "capturing_graph",
    "checkpoint_keeping_batchnorm_statistics",
    "exporting_graph",
    "get_activation",
    "get_norm",
    "layout_like",
    "plain_layout",
    "resize_bicubic",
    "upsample_bicubic_as_conv",
]
