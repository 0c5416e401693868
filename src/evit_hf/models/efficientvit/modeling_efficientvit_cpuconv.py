"""The CPU conv kernels of the inference fast path: convs that oneDNN computes slower than a BLAS formulation.

- Dense stride-1 3x3 convs as Winograd F(4x4, 3x3) (`winograd_conv3x3`).
- 1x1 convs with thousands of input channels as one GEMM (`pointwise_conv_as_gemm`): at 6144 -> 512 channels on
  16x16 pixels oneDNN takes 29 ms where MKL's GEMM takes 9.5 ms (AVX-512, 2 threads).

Winograd: a stride-1 3x3 conv computes each 4x4 block of outputs from a 6x6 block of inputs. The minimal
filtering algorithm transforms both blocks into a 36-point domain, where the conv becomes 36 independent matrix
products (pixels x in_channels @ in_channels x out_channels), then transforms back: 2.25 multiplies per output and
channel pair instead of 9. The transforms are small fixed matrices (Lavin & Gray, arXiv 1509.09308, points 0,
+-1, +-2). Their fp32 rounding makes the result less exact than oneDNN's direct conv: max abs error against fp64
at unit-scale outputs 1.9e-5 (direct: 2e-6) at 64 -> 80 channels, 5.0e-5 (direct: 1.9e-5) at 256 -> 256. So it
serves inference only: the plain graph stays the reference, and the parity tests run both.

The matrix products go to the BLAS (MKL on x86 wheels) at about the GEMM rate of oneDNN's direct conv, so the
4x fewer multiplies make SAM's 256 -> 256 neck convs 2x faster (27 -> 14 ms at 64x64), once there are enough
channels to amortise the transforms (`winograd_applies`).

Pure functions of tensors; `modeling_efficientvit_fastpath.py` decides where they apply. Imports only torch, so it
travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
