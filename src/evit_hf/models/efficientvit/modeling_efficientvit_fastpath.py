"""The inference fast path: installed onto a model from outside its definition, removed the same way.

`set_inference_optimizations(model, True)` (what `config.optimize_inference`, the default, does in `post_init`)
gives these module instances a replacement for one method; `False` removes them, which restores the plain
modules exactly (the replacements hold no parameters: `state_dict` never changes):

- `ConvNormAct.forward`: BatchNorm folded into the conv; CPU input laid out channels-last (oneDNN's convs run
  faster in it, and every later op keeps it); in eager fp32 CPU inference the fastest kernel (Winograd
  F(4x4, 3x3) for dense 3x3 convs of >= 64 channels, one GEMM for 1x1 convs of >= 4096 input channels, else
  oneDNN's conv fused with the activation) and in-place activations (tanh-GELU as x * sigmoid(2u)).
- `ResidualBlock.add_residual`: in eager inference, accumulates into the branch output (no new tensor).
- `HyenaMixer.forward`: in eager inference, reuses the long filters' spectra while weights and map size hold.

Training mode runs the plain graph whatever is installed. Graph capture (`capturing_graph`: tracing, ONNX
export, torch.export, torch.compile) sees the folded convs in plain aten ops and no in-place updates or cached
tensors, so exported graphs are those of the plain modules with BatchNorm folded. `eager_inference` is the
other predicate: no gradient recorded and no graph captured, where overwriting our own intermediates and
caching transforms of the weights is safe. `ParameterStateCache` is the one cache of weight transforms (the
Winograd filters, the Hyena spectra). Everything agrees with the plain graph to fp32 rounding; the exactness of
each trick is tested against the plain computation (tests/test_inference_optimizations.py).

Like timm's `reparameterize_model`, this is an inference transform of a built model; unlike it, it changes no
module or parameter, so the same model still trains, saves and exports. The CPU conv kernels (Winograd, the
1x1 GEMM) are here too: transformers 4.57 copies only the direct relative imports of a class's file into a
local folder's module cache, and `modeling_efficientvit.py` imports this file. Imports only torch and sibling
files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .modeling_efficientvit_blocks import ConvNormAct, ResidualBlock, capturing_graph
from .modeling_efficientvit_mixers import HyenaMixer, kernel_spectrum


def eager_inference() -> bool:
    """No gradient is recorded and no graph is captured: our own intermediates may be overwritten and transforms
    of the weights reused. (In-place updates are also kept out of traced graphs because the TorchScript ONNX
    exporter mistranslates in-place activations and adds.)"""
    return not torch.is_grad_enabled() and not capturing_graph()


# ------------------------------------------------------------------------------------------------ the weight cache


class ParameterStateCache:
    """One value derived from some tensors (parameters, buffers), reused while none of them changed.

    A tensor counts as unchanged while it is the same tensor object, on the same storage, with the same version
    counter: optimiser steps, `load_state_dict` and other in-place updates bump the counter, `.to()` / `.half()`
    give the parameter new storage, and assigning a new parameter gives a new object. Storage and tensor are
    held by weak references, so the cache neither keeps old weights alive nor mistakes a new tensor at a freed
    address for the old one. Tensors made under `torch.inference_mode()` have no version counter (and are
    updated in place without a trace inside it): with one among the sources nothing is cached. Edits through
    `.data` bypass the counter; entering training mode forgets the value (see `forget_cached_weights`).

    Copies and pickles of a model start with an empty cache (weak references do not pickle). The entry is
    replaced in one assignment, so threads sharing a model at worst compute a value twice.
    """

    def __init__(self) -> None:
        self._entry: tuple[tuple, list, torch.Tensor] | None = None  # (extra, source states, value)

    def get(self, sources: Sequence[torch.Tensor], compute: Callable[[], torch.Tensor],
            extra: tuple = ()) -> torch.Tensor:
        """The cached value if `sources` and `extra` (e.g. a map size) are as when it was computed, else
        `compute()` (stored for the next call)."""
        if any(t.is_inference() for t in sources):
            self._entry = None
            return compute()
        entry = self._entry
        if entry is not None and self._holds(entry, sources, extra):
            return entry[2]
        self._entry = None  # free the old value before making the new one
        states = [(weakref.ref(t), weakref.ref(t.untyped_storage()), t._version) for t in sources]
        value = compute()
        self._entry = (extra, states, value)
        return value

    @staticmethod
    def _holds(entry: tuple, sources: Sequence[torch.Tensor], extra: tuple) -> bool:
        key_extra, states, _ = entry
        return key_extra == extra and len(states) == len(sources) and all(
            tensor() is t and storage() is t.untyped_storage() and version == t._version
            for (tensor, storage, version), t in zip(states, sources)
        )

    def clear(self) -> None:
        self._entry = None

    def __getstate__(self) -> dict:
        return {"_entry": None}


# ------------------------------------------------------------------------------------------------ CPU conv kernels
#
# Convs that oneDNN computes slower than a BLAS formulation:
# - dense stride-1 3x3 convs as Winograd F(4x4, 3x3) (`winograd_conv3x3`);
# - 1x1 convs with thousands of input channels as one GEMM (`pointwise_conv_as_gemm`): at 6144 -> 512 channels
#   on 16x16 pixels oneDNN takes 29 ms where MKL's GEMM takes 9.5 ms (AVX-512, 2 threads).
#
# Winograd: a stride-1 3x3 conv computes each 4x4 block of outputs from a 6x6 block of inputs. The minimal
# filtering algorithm transforms both blocks into a 36-point domain, where the conv becomes 36 independent matrix
# products (pixels x in_channels @ in_channels x out_channels), then transforms back: 2.25 multiplies per output and
# channel pair instead of 9. The transforms are small fixed matrices (Lavin & Gray, arXiv 1509.09308, points 0,
# +-1, +-2). Their fp32 rounding makes the result less exact than oneDNN's direct conv: max abs error against fp64
# at unit-scale outputs 1.9e-5 (direct: 2e-6) at 64 -> 80 channels, 5.0e-5 (direct: 1.9e-5) at 256 -> 256. So it
# serves inference only: the plain graph stays the reference, and the parity tests run both.
#
# The matrix products go to the BLAS (MKL on x86 wheels) at about the GEMM rate of oneDNN's direct conv, so the
# 4x fewer multiplies make SAM's 256 -> 256 neck convs 2x faster (27 -> 14 ms at 64x64), once there are enough
# channels to amortise the transforms (`winograd_applies`).

TILE = 4  # outputs per block side
_BLOCK = TILE + 2  # inputs per block side

# Rows: the 6 transform points; columns: the 6 inputs of a block.
_INPUT_TRANSFORM = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_FILTER_TRANSFORM = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_OUTPUT_TRANSFORM = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)

# Below these channel counts the transforms cost more than the multiplies they save (AVX-512, one conv alone:
# 32->32 at 256x256 is 2x slower than oneDNN, 64->256 at 128x128 1.4x faster, 256->256 at 64x64 2x faster;
# the SAM-L0 encoder times the same with 64 or 128 as the threshold).
MIN_CHANNELS = 64
MIN_SIDE = 8


def _matrix(rows: tuple, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(rows, dtype=dtype)


def _two_dimensional(rows: tuple) -> torch.Tensor:
    """The transform of a 2-D block flattened row-major: the Kronecker product of the 1-D transform with itself."""
    matrix = _matrix(rows)
    return torch.kron(matrix, matrix).float()


_INPUT_TRANSFORM_2D = _two_dimensional(_INPUT_TRANSFORM)  # (36, 36)
_OUTPUT_TRANSFORM_2D = _two_dimensional(_OUTPUT_TRANSFORM)  # (16, 36)


def winograd_applies(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether `conv` on `x` is a dense stride-1 3x3 conv that Winograd computes faster (caller checks the
    device, dtype and autograd state)."""
    return (
        conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.padding == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and conv.in_channels >= MIN_CHANNELS
        and conv.out_channels >= MIN_CHANNELS
        and min(x.shape[-2:]) >= MIN_SIDE
    )


def winograd_filter(weight: torch.Tensor) -> torch.Tensor:
    """(out, in, 3, 3) conv weight -> (36, in, out): one in x out matrix per transform point. Computed in fp64
    so that the filter transform adds no rounding of its own."""
    transform = _matrix(_FILTER_TRANSFORM).to(weight.device)
    filters = torch.einsum("au,oiuv,bv->abio", transform, weight.double(), transform)
    return filters.reshape(_BLOCK * _BLOCK, weight.shape[1], weight.shape[0]).to(weight.dtype).contiguous()


def winograd_conv3x3(x: torch.Tensor, filters: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=1)` for `filters = winograd_filter(weight)`; returns channels-last."""
    batch, channels, height, width = x.shape
    rows, cols = -(-height // TILE), -(-width // TILE)
    # Zero padding: 1 pixel for the conv, plus whatever completes the last block of each side.
    padded = F.pad(x, (1, cols * TILE + 1 - width, 1, rows * TILE + 1 - height))
    padded = padded.contiguous(memory_format=torch.channels_last)
    stride_n, stride_c, stride_h, stride_w = padded.stride()
    # Overlapping 6x6 input blocks, one row per (image, block row, block col): (blocks, 36, channels).
    blocks = padded.as_strided(
        (batch, rows, cols, _BLOCK, _BLOCK, channels),
        (stride_n, TILE * stride_h, TILE * stride_w, stride_h, stride_w, stride_c),
    ).reshape(batch * rows * cols, _BLOCK * _BLOCK, channels)
    transformed = torch.matmul(_INPUT_TRANSFORM_2D.to(x.device), blocks)  # (blocks, 36, in)
    # The 36 products read `transformed` as (36, blocks, in) in place: BLAS takes the row stride as given.
    products = torch.bmm(transformed.transpose(0, 1), filters)  # (36, blocks, out)
    out_channels = filters.shape[-1]
    outputs = torch.mm(_OUTPUT_TRANSFORM_2D.to(x.device), products.view(_BLOCK * _BLOCK, -1))
    outputs = outputs.view(TILE, TILE, batch, rows, cols, out_channels).permute(2, 3, 0, 4, 1, 5)
    y = x.new_empty((batch, rows, TILE, cols, TILE, out_channels))
    if bias is None:
        y.copy_(outputs)
    else:
        torch.add(outputs, bias, out=y)
    y = y.view(batch, rows * TILE, cols * TILE, out_channels)
    if rows * TILE != height or cols * TILE != width:
        y = y[:, :height, :width]
    return y.permute(0, 3, 1, 2)


# oneDNN's 1x1 kernels lose to the BLAS GEMM only when the reduction is this long (3072 -> 512: a tie).
GEMM_MIN_IN_CHANNELS = 4096


def pointwise_as_gemm_applies(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether `conv` on `x` is a 1x1 conv with a reduction long enough for the GEMM to win."""
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.groups == 1
        and conv.in_channels >= GEMM_MIN_IN_CHANNELS
        and x.is_contiguous(memory_format=torch.channels_last)
    )


def pointwise_conv_as_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.conv2d(x, weight, bias)` for a 1x1 `weight` and a channels-last `x`, as one GEMM over pixels."""
    batch, channels, height, width = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)  # a view: channels-last is (pixels, channels)
    matrix = weight.view(weight.shape[0], channels).t()
    y = torch.mm(pixels, matrix) if bias is None else torch.addmm(bias, pixels, matrix)
    return y.view(batch, height, width, -1).permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------------ ConvNormAct


def fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of the single conv that computes `norm(conv(x))` with `norm`'s running statistics."""
    scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
    weight = conv.weight * scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype)
    shift = norm.bias - norm.running_mean * scale
    bias = shift if conv.bias is None else shift + conv.bias * scale
    return weight, bias.to(conv.weight.dtype)


# GELU's tanh form as 0.5 x (1 + tanh(u)) == x sigmoid(2u), u = sqrt(2 / pi) (x + 0.044715 x^3): the same
# function (fp32 rounding apart), computed with a sigmoid, which CPUs evaluate about 3x faster than tanh.
_GELU_TANH_LINEAR = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_TANH_CUBIC = _GELU_TANH_LINEAR * 0.044715


def gelu_tanh_(x: torch.Tensor) -> torch.Tensor:
    """GELU (tanh approximation) of `x`, written into `x`; for inference (no autograd)."""
    gate = torch.addcmul(x.new_full((), _GELU_TANH_LINEAR), x, x, value=_GELU_TANH_CUBIC)
    return x.mul_(gate.mul_(x).sigmoid_())


# Activations with an in-place functional form.
_INPLACE_ACTIVATIONS: dict[type, Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: F.relu_,
    nn.ReLU6: lambda x: F.relu6(x, inplace=True),
    nn.Hardswish: lambda x: F.hardswish(x, inplace=True),
    nn.SiLU: lambda x: F.silu(x, inplace=True),
}


def activate(act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`act(x)` for a fresh intermediate `x` of ours, written into `x` in eager inference (one pass over memory
    less)."""
    if not eager_inference():
        return act(x)
    inplace = _INPLACE_ACTIVATIONS.get(type(act))
    if inplace is not None:
        return inplace(x)
    if type(act) is nn.GELU:
        return gelu_tanh_(x) if act.approximate == "tanh" else torch.ops.aten.gelu_(x)
    return act(x)


# oneDNN's fused convolution (the kernel torch.compile uses for conv + activation on CPU): the activation is
# applied as the conv writes its output, saving a pass over memory. Unary post-op names per activation.
_ONEDNN_POST_OPS: dict[type, tuple[str, list, str]] = {
    nn.Identity: ("none", [], ""),
    nn.ReLU: ("relu", [], ""),
    nn.ReLU6: ("hardtanh", [0.0, 6.0], ""),
    nn.Hardswish: ("hardswish", [], ""),
    nn.SiLU: ("swish", [], ""),
}
_ONEDNN_FUSED_CONV = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def onednn_post_op(act: nn.Module) -> tuple[str, list, str] | None:
    """The fused-conv post-op computing `act`, or None where the conv and `activate` apart are faster."""
    if type(act) is nn.GELU:  # oneDNN's tanh GELU is slower than the conv and `gelu_tanh_` apart
        return ("gelu", [], "none") if act.approximate == "none" else None
    return _ONEDNN_POST_OPS.get(type(act))


def onednn_conv_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d,
                    post_op: tuple[str, list, str]) -> torch.Tensor:
    """`act(conv(x))` with `conv`'s geometry and the given weights, as one oneDNN call."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups, *post_op
    )


def _cpu_kernels_apply(x: torch.Tensor) -> bool:
    """An fp32 CPU tensor outside autocast, in a torch build with oneDNN: what the CPU kernels below take (their
    thresholds were measured against oneDNN's convolutions)."""
    return (_ONEDNN_FUSED_CONV and x.device.type == "cpu" and x.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu"))


class InstalledMethod:
    """A replacement for one method of one module instance (`installed_as`), set as an instance attribute.
    It holds the module, never a parameter, so `state_dict`, `named_modules` and `repr` are unchanged."""

    installed_as = "forward"

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def forget(self) -> None:
        """Drop cached weight transforms."""


class ConvNormActKernel(InstalledMethod):
    """`ConvNormAct.forward` with BatchNorm folded into the conv and the fastest CPU kernel for it.

    In eval mode on CPU the input is laid out channels-last (the stem's input; every later op keeps the layout),
    which oneDNN's convolutions run faster. A wrapped conv (e.g. a PEFT LoRA layer) computes more than its
    weight says, and training uses batch statistics: both run the plain forward.
    """

    def __init__(self, module: ConvNormAct) -> None:
        super().__init__(module)
        self.winograd_filters = ParameterStateCache()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        block = self.module
        conv, norm, act = block.conv, block.norm, block.act
        if block.training or type(conv) is not nn.Conv2d:
            return type(block).forward(block, x)
        if x.device.type == "cpu" and not x.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        if not isinstance(norm, (nn.BatchNorm2d, nn.Identity)):  # LayerNorm2d: nothing to fold
            return activate(act, norm(conv(x)))
        weight, bias = fold_batchnorm(conv, norm) if isinstance(norm, nn.BatchNorm2d) else (conv.weight, conv.bias)
        if not (eager_inference() and _cpu_kernels_apply(x)):
            return activate(act, conv._conv_forward(x, weight, bias))
        if winograd_applies(conv, x):
            return activate(act, winograd_conv3x3(x, self._winograd_filters(weight), bias))
        if pointwise_as_gemm_applies(conv, x):
            return activate(act, pointwise_conv_as_gemm(x, weight, bias))
        post_op = onednn_post_op(act)
        if post_op is not None:
            return onednn_conv_act(x, weight, bias, conv, post_op)
        return activate(act, conv._conv_forward(x, weight, bias))

    def _winograd_filters(self, weight: torch.Tensor) -> torch.Tensor:
        """`winograd_filter` of the folded `weight`, once per parameter state: unlike folding (a pass over the
        weights), the transform costs as much as a small conv."""
        block = self.module
        sources = [t for t in (block.conv.weight, block.conv.bias, *block.norm.parameters(), *block.norm.buffers())
                   if t is not None]
        return self.winograd_filters.get(sources, lambda: winograd_filter(weight))

    def forget(self) -> None:
        self.winograd_filters.clear()


class InPlaceResidualAdd(InstalledMethod):
    """`ResidualBlock.add_residual` accumulating into the branch output, a fresh intermediate of the block, in
    eager inference."""

    installed_as = "add_residual"

    def __call__(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        if eager_inference() and branch.shape == x.shape and branch.dtype == x.dtype:
            return branch.add_(x)
        return x + branch


class HyenaSpectraKernel(InstalledMethod):
    """`HyenaMixer.forward` with the long filters' spectra computed once per map size and weight state: they
    depend on nothing else (training, gradients and graph capture recompute them on every call)."""

    def __init__(self, module: HyenaMixer) -> None:
        super().__init__(module)
        self.spectra = ParameterStateCache()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mixer = self.module
        if mixer.training or not eager_inference():
            return type(mixer).forward(mixer, x)
        height, width = x.shape[-2:]
        spectra = self.spectra.get(list(mixer.filter.parameters()),
                                   lambda: kernel_spectrum(mixer.filter(height, width)), extra=(height, width))
        return type(mixer).forward(mixer, x, spectra=spectra)

    def forget(self) -> None:
        self.spectra.clear()


# Which replacement each module type gets (most specific first).
_REPLACEMENTS: tuple[tuple[type[nn.Module], type[InstalledMethod]], ...] = (
    (ConvNormAct, ConvNormActKernel),
    (ResidualBlock, InPlaceResidualAdd),
    (HyenaMixer, HyenaSpectraKernel),
)


def _installed(module: nn.Module) -> list[InstalledMethod]:
    return [value for value in vars(module).values() if isinstance(value, InstalledMethod)]


def set_inference_optimizations(model: nn.Module, enabled: bool) -> nn.Module:
    """Install the inference fast path on every module of `model` that has one (`enabled`), or remove it,
    leaving the plain modules. Returns `model`; its parameters, buffers and `state_dict` are untouched."""
    for module in model.modules():
        for method in _installed(module):
            delattr(module, method.installed_as)
        if enabled:
            for module_type, replacement in _REPLACEMENTS:
                if isinstance(module, module_type):
                    setattr(module, replacement.installed_as, replacement(module))
    return model


def forget_cached_weights(model: nn.Module) -> None:
    """Drop every cached weight transform in `model` (edits through `.data` bypass version counters)."""
    for module in model.modules():
        for method in _installed(module):
            method.forget()


def installed_methods(model: nn.Module) -> Counter[str]:
    """How many replacements of each kind are installed in `model` (`{"ConvNormActKernel": 37, ...}`)."""
    return Counter(type(method).__name__ for module in model.modules() for method in _installed(module))


__all__ = [
    "GEMM_MIN_IN_CHANNELS",
    "MIN_CHANNELS",
    "MIN_SIDE",
    "ConvNormActKernel",
    "HyenaSpectraKernel",
    "InPlaceResidualAdd",
    "InstalledMethod",
    "ParameterStateCache",
    "activate",
    "eager_inference",
    "fold_batchnorm",
    "forget_cached_weights",
    "gelu_tanh_",
    "installed_methods",
    "onednn_conv_act",
    "onednn_post_op",
    "pointwise_as_gemm_applies",
    "pointwise_conv_as_gemm",
    "set_inference_optimizations",
    "winograd_applies",
    "winograd_conv3x3",
    "winograd_filter",
]
