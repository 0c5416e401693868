"""The token mixers of the EfficientViT block, in one registry: LiteMLA (the original), softmax attention,
2-D Hyena and 2-D retention.

Owns `LiteMultiScaleAttention` (multi-scale ReLU linear attention, `"lite_mla"`), `SoftmaxAttention` (quadratic
multi-head attention, the baseline of the EfficientViT paper), `HyenaMixer` (gated long convolutions with
implicit 2-D filters, applied with FFTs), `RetentionMixer` (RetNet-style retention with a per-head
Manhattan-distance decay), their functional cores, `TOKEN_MIXER_CLASSES` (`config.token_mixer` -> class) and
`build_token_mixer`. Every mixer maps (B, C, H, W) to (B, C, H, W) for any H and W, computes its global mixing
in fp32 with autocast off, keeps its input's memory format and ends with a 1x1 `ConvNormAct` projection; each
mixer is a unit of gradient checkpointing. Imports only torch, transformers' `GradientCheckpointingLayer` and
sibling files, so it travels in `trust_remote_code` folders.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .configuration_efficientvit import TOKEN_MIXERS
from .modeling_efficientvit_blocks import ConvNormAct, autocast_disabled, layout_like


def attention_heads(channels: int, head_dim: int, heads_ratio: float) -> int:
    """`int(channels // head_dim * heads_ratio)` heads of `head_dim` channels, at least one."""
    heads = int(channels // head_dim * heads_ratio)
    if heads < 1:
        raise ValueError(f"{channels} channels give no attention head of {head_dim} channels.")
    return heads


def _projection(in_channels: int, out_channels: int, norm_eps: float, norm_type: str | None) -> ConvNormAct:
    """The output 1x1 conv of every mixer: BatchNorm (or `norm_type`; `None`: a bias and no norm)."""
    return ConvNormAct(in_channels, out_channels, 1, bias=norm_type is None, use_norm=norm_type is not None,
                       norm_eps=norm_eps, norm_type=norm_type or "batchnorm")


class TokenMixer(GradientCheckpointingLayer):
    """Base of the token mixers: `from_config` builds one for `channels` in and out from a config's
    token-mixer fields (`TokenMixerFieldsMixin`) and `norm_eps`. A mixer is one unit of gradient checkpointing
    (`model.gradient_checkpointing_enable()`), like the convolutional blocks (`ConvBlock`)."""

    @classmethod
    def from_config(cls, channels: int, config: Any, norm_type: str | None = "batchnorm") -> TokenMixer:
        return cls(channels, channels, config, norm_type=norm_type)


# ------------------------------------------------------------------------------------------------ lite_mla


def relu_linear_attention(qkv: torch.Tensor, head_dim: int, eps: float) -> torch.Tensor:
    """ReLU linear attention over all pixels, in fp32 whatever the input dtype or autocast state.

    `qkv` is (B, heads * 3 * head_dim, H, W) with each head's channels ordered [q | k | v] (the original
    layout). Per head, with q, k after ReLU: `out_n = sum_m v_m (k_m . q_n) / (sum_m k_m . q_n + eps)`.
    The denominator uses the key sum directly instead of the original's padding of V with a row of ones,
    and one path serves every map size, so export tracing cannot freeze a size-dependent branch.
    """
    batch, _, height, width = qkv.shape
    with autocast_disabled(qkv):
        tokens = qkv.float().reshape(batch, -1, 3 * head_dim, height * width)
        q, k, v = tokens.split(head_dim, dim=2)  # each (B, heads, d, N)
        q, k = F.relu(q), F.relu(k)
        kv = v @ k.transpose(-1, -2)  # (B, heads, d, d)
        numerator = kv @ q  # (B, heads, d, N)
        denominator = k.sum(dim=-1, keepdim=True).transpose(-1, -2) @ q  # (B, heads, 1, N)
        out = numerator / (denominator + eps)
    return out.to(qkv.dtype).reshape(batch, -1, height, width)


class MultiScaleAggregation(nn.Module):
    """Aggregates neighbouring tokens of q, k and v: depthwise kxk conv, then a grouped 1x1 conv per head."""

    def __init__(self, channels: int, kernel_size: int, heads: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels,
                                   bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, groups=3 * heads, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class LiteMultiScaleAttention(TokenMixer):
    """Lightweight multi-scale ReLU linear attention (the original's LiteMLA, `token_mixer="lite_mla"`).

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
        heads = attention_heads(in_channels, head_dim, heads_ratio)
        total = heads * head_dim
        self.qkv = ConvNormAct(in_channels, 3 * total, 1, use_norm=False)
        self.aggregations = nn.ModuleList(MultiScaleAggregation(3 * total, s, heads) for s in scales)
        self.proj = _projection(total * (1 + len(scales)), out_channels, norm_eps, norm_type)

    @classmethod
    def from_config(cls, channels: int, config: Any, norm_type: str | None = "batchnorm") -> LiteMultiScaleAttention:
        return cls(channels, channels, config.attention_head_dim, config.attention_heads_ratio,
                   config.attention_scales, config.attention_eps, config.norm_eps, norm_type=norm_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x)
        if len(self.aggregations):
            qkv = torch.cat([qkv, *(aggregate(qkv) for aggregate in self.aggregations)], dim=1)
        return self.proj(layout_like(relu_linear_attention(qkv, self.head_dim, self.eps), x))


# ------------------------------------------------------------------------------------------------ softmax


def softmax_attention(qkv: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Multi-head softmax attention over all pixels, in fp32 whatever the input dtype or autocast state.

    `qkv` is (B, heads * 3 * head_dim, H, W) with each head's channels ordered [q | k | v] (LiteMLA's layout);
    per head `out = softmax(q k^T / sqrt(head_dim)) v` over the H * W tokens. `F.scaled_dot_product_attention`
    picks the fused (flash) CPU/GPU kernel where it can, which never materialises the N x N matrix.
    """
    batch, _, height, width = qkv.shape
    with autocast_disabled(qkv):
        tokens = qkv.float().reshape(batch, -1, 3 * head_dim, height * width).transpose(-1, -2)
        q, k, v = (t.contiguous() for t in tokens.split(head_dim, dim=-1))  # each (B, heads, N, d)
        out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(-1, -2).reshape(batch, -1, height, width).to(qkv.dtype)


class SoftmaxAttention(TokenMixer):
    """Quadratic multi-head self-attention: 1x1 conv to per-head [q|k|v], softmax attention, 1x1 projection.

    The plain global attention the EfficientViT paper measures ReLU linear attention against (no multi-scale
    aggregation: cost and memory grow with (H * W)^2).
    """

    def __init__(self, in_channels: int, out_channels: int, config: Any, norm_type: str | None = "batchnorm"):
        super().__init__()
        self.head_dim = config.attention_head_dim
        total = attention_heads(in_channels, self.head_dim, config.attention_heads_ratio) * self.head_dim
        self.qkv = ConvNormAct(in_channels, 3 * total, 1, use_norm=False)
        self.proj = _projection(total, out_channels, config.norm_eps, norm_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(layout_like(softmax_attention(self.qkv(x), self.head_dim), x))


# ------------------------------------------------------------------------------------------------ hyena


def fft_long_conv2d(z: torch.Tensor, kernel: torch.Tensor | None = None, *,
                    spectrum: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel linear ("same", zero-padded) 2-D convolution of `z` (B, C, H, W) with a full-size kernel.

    `kernel` (C, 2H, 2W) holds the tap of offset (dy, dx) at index (dy mod 2H, dx mod 2W), offsets from
    -(H-1) to H-1 (the row/column of offset -H must be zero). Zero padding to 2H x 2W keeps the circular
    convolution of the FFT from wrapping: every output pixel only sees offsets of magnitude < H (< W).
    Computed in fp32: `out[y, x] = sum_{y', x'} kernel[y - y', x - x'] z[y', x']`. `spectrum`
    (`kernel_spectrum(kernel)`) may be given instead of `kernel`, to reuse it.
    """
    height, width = z.shape[-2:]
    size = (2 * height, 2 * width)
    if spectrum is None:
        if kernel is None:
            raise ValueError("fft_long_conv2d needs `kernel` or `spectrum`.")
        spectrum = kernel_spectrum(kernel)
    out = torch.fft.irfft2(torch.fft.rfft2(z.float(), s=size) * spectrum, s=size)
    return out[..., :height, :width]


def kernel_spectrum(kernel: torch.Tensor) -> torch.Tensor:
    """The rfft2 of circular-layout kernels (..., 2H, 2W), as `fft_long_conv2d` multiplies it."""
    return torch.fft.rfft2(kernel.float())


def _dft_matrices(height: int, width: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Real cos/sin matrices of the zero-padded 2H x 2W DFT and its inverse (float64 angles, fp32 values)."""
    p_size, q_size = 2 * height, 2 * width
    y = torch.arange(height, dtype=torch.float64, device=device)
    p = torch.arange(p_size, dtype=torch.float64, device=device)
    x = torch.arange(width, dtype=torch.float64, device=device)
    xk = torch.arange(q_size, dtype=torch.float64, device=device)
    q = torch.arange(width + 1, dtype=torch.float64, device=device)
    input_w = 2 * math.pi * torch.outer(x, q) / q_size  # (W, W+1): the input's W columns -> half spectrum
    kernel_w = 2 * math.pi * torch.outer(xk, q) / q_size  # (2W, W+1): the kernel's 2W columns
    input_h = 2 * math.pi * torch.outer(p, y) / p_size  # (2H, H)
    kernel_h = 2 * math.pi * torch.outer(p, p) / p_size  # (2H, 2H)
    # irfft over the width: the DC and Nyquist bins count once, the others twice (their mirrored halves).
    weight = torch.full((width + 1, 1), 2.0, dtype=torch.float64, device=device)
    weight[0] = weight[-1] = 1.0
    output_w = 2 * math.pi * torch.outer(q, x) / q_size  # (W+1, W)
    matrices = {
        "in_w_cos": torch.cos(input_w), "in_w_sin": torch.sin(input_w),
        "k_w_cos": torch.cos(kernel_w), "k_w_sin": torch.sin(kernel_w),
        "in_h_cos": torch.cos(input_h), "in_h_sin": torch.sin(input_h),
        "k_h_cos": torch.cos(kernel_h), "k_h_sin": torch.sin(kernel_h),
        "out_h_cos": torch.cos(input_h).T / p_size, "out_h_sin": torch.sin(input_h).T / p_size,
        "out_w_cos": weight * torch.cos(output_w) / q_size, "out_w_sin": weight * torch.sin(output_w) / q_size,
    }
    return {name: m.float() for name, m in matrices.items()}


def dft_long_conv2d(z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`fft_long_conv2d` with the DFTs written as real matrix products: the export path (ONNX has no rfft2
    export in torch.onnx), O(H * W * (H + W)) per channel instead of the FFT's O(H * W * log(H * W))."""
    height, width = z.shape[-2:]
    m = _dft_matrices(height, width, z.device)
    z, kernel = z.float(), kernel.float()
    # Forward transform of the input: real DFT over the width, then the full complex DFT over the height.
    a_re, a_im = z @ m["in_w_cos"], -(z @ m["in_w_sin"])
    z_re = m["in_h_cos"] @ a_re + m["in_h_sin"] @ a_im
    z_im = m["in_h_cos"] @ a_im - m["in_h_sin"] @ a_re
    b_re, b_im = kernel @ m["k_w_cos"], -(kernel @ m["k_w_sin"])
    k_re = m["k_h_cos"] @ b_re + m["k_h_sin"] @ b_im
    k_im = m["k_h_cos"] @ b_im - m["k_h_sin"] @ b_re
    y_re = z_re * k_re - z_im * k_im
    y_im = z_re * k_im + z_im * k_re
    # Inverse: only the H x W outputs the zero padding keeps free of wrap-around are computed.
    c_re = m["out_h_cos"] @ y_re - m["out_h_sin"] @ y_im
    c_im = m["out_h_cos"] @ y_im + m["out_h_sin"] @ y_re
    return c_re @ m["out_w_cos"] - c_im @ m["out_w_sin"]


def direct_long_conv2d(z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """`fft_long_conv2d` as a depthwise conv with the full (2H-1) x (2W-1) kernel: the reference for tests."""
    height, width = z.shape[-2:]
    centred = torch.roll(kernel, shifts=(height - 1, width - 1), dims=(-2, -1))[..., : 2 * height - 1, : 2 * width - 1]
    # conv2d correlates: flip so that tap (dy, dx) multiplies z[y - dy, x - dx].
    weight = centred.flip(-2, -1).unsqueeze(1).float()
    return F.conv2d(z.float(), weight, padding=(height - 1, width - 1), groups=z.shape[1])


def long_conv2d(z: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The long convolution: FFTs in eager/compiled runs, DFT matrix products while exporting to ONNX."""
    if torch.onnx.is_in_onnx_export():
        return dft_long_conv2d(z, kernel)
    return fft_long_conv2d(z, kernel)


def circular_offsets(size: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets 0, 1, ..., size-1, -size, -(size-1), ..., -1 of the 2*size circular layout, and the mask of the
    valid ones (all but -size, which no output pixel of a size-long axis can reach)."""
    index = torch.arange(2 * size, device=device)
    offsets = torch.where(index < size, index, index - 2 * size)
    return offsets, index != size


class HyenaFilter2d(nn.Module):
    """Implicit long 2-D filters (Hyena): an MLP with sine activations maps the relative position (dy, dx) to
    one tap per channel and order, times an exponential window in the distance.

    Taps are defined at any offset, so one set of weights serves every feature-map size. Positions enter in
    pixels (not normalised to the map), so a filter means the same at training crops and at full resolution.
    Each channel's window `exp(-rate * r)` reaches 1% at a distance log-spaced over `reach`; the taps are
    divided by the window's sum over the map, so a long conv stays a (learned) weighted average at any size.
    """

    def __init__(self, channels: int, order: int, hidden: int, frequencies: int,
                 reach: tuple[float, float] | list[float]) -> None:
        super().__init__()
        self.channels, self.order, self.frequencies = channels, order, frequencies
        self.position_scale = 2.0 ** (frequencies + 1)  # the longest period: linear features stay O(1) within it
        self.mlp = nn.Sequential(
            nn.Linear(2 + 4 * frequencies, hidden), _Sine(), nn.Linear(hidden, hidden), _Sine(),
            nn.Linear(hidden, order * channels),
        )
        fastest, slowest = float(reach[0]), float(reach[1])
        # Plain floats (no tensor, so meta-device builds work): fixed by the config, neither trained nor saved.
        steps = [c / max(channels - 1, 1) for c in range(channels)]
        self.rates = [math.log(100.0) / (fastest * (slowest / fastest) ** t) for t in steps]

    def forward(self, height: int, width: int) -> torch.Tensor:
        """The kernels (order, channels, 2H, 2W) in `fft_long_conv2d`'s circular layout, in fp32."""
        device = self.mlp[0].weight.device
        dy, valid_y = circular_offsets(height, device)
        dx, valid_x = circular_offsets(width, device)
        dy = dy.float()[:, None].expand(-1, 2 * width)
        dx = dx.float()[None, :].expand(2 * height, -1)
        # Periods 4, 8, ..., 2**(frequencies + 1) pixels (period 2 would give sin = 0 at every integer offset).
        omega = math.pi * 2.0 ** -torch.arange(1, self.frequencies + 1, dtype=torch.float32, device=device)
        angles_y, angles_x = dy[..., None] * omega, dx[..., None] * omega
        features = torch.cat([torch.stack([dy, dx], dim=-1) / self.position_scale, torch.sin(angles_y),
                              torch.cos(angles_y), torch.sin(angles_x), torch.cos(angles_x)], dim=-1)
        taps = self.mlp(features.float()).permute(2, 0, 1)  # (order * channels, 2H, 2W)
        valid = (valid_y[:, None] & valid_x[None, :]).float()
        rates = torch.tensor(self.rates, dtype=torch.float32, device=device).view(-1, 1, 1)
        window = torch.exp(-rates * torch.sqrt(dy * dy + dx * dx)) * valid  # (channels, 2H, 2W)
        window = window / window.sum(dim=(-2, -1), keepdim=True)
        return taps.reshape(self.order, self.channels, 2 * height, 2 * width) * window


class _Sine(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


class HyenaMixer(TokenMixer):
    """2-D Hyena operator of order N: `z = v; z = x_n * (conv(h_n, z) + b_n * z)` for n = 1..N, then a projection.

    A 1x1 conv gives N + 1 maps (v and the gates x_1..x_N) of `heads * head_dim` channels, a 3x3 depthwise
    conv (Hyena's short filter) mixes each with its neighbours, `h_n` are implicit long filters
    (`HyenaFilter2d`) applied per channel by FFT (`long_conv2d`) and `b_n` a per-channel skip. Cost is
    O(C * H * W * log(H * W)): sub-quadratic, like linear attention.
    """

    def __init__(self, in_channels: int, out_channels: int, config: Any, norm_type: str | None = "batchnorm"):
        super().__init__()
        self.order, head_dim = config.hyena_order, config.attention_head_dim
        self.width = attention_heads(in_channels, head_dim, config.attention_heads_ratio) * head_dim
        branches = (self.order + 1) * self.width
        self.in_proj = ConvNormAct(in_channels, branches, 1, use_norm=False)
        self.short_conv = ConvNormAct(branches, branches, 3, groups=branches, bias=True, use_norm=False)
        self.filter = HyenaFilter2d(self.width, self.order, config.hyena_filter_hidden,
                                    config.hyena_filter_frequencies, config.hyena_filter_reach)
        # Ones: with the (small) initial filters the operator starts as a product of gates, x_N * ... * x_1 * v.
        self.skip = nn.Parameter(torch.ones(self.order, self.width))
        self.proj = _projection(self.width, out_channels, config.norm_eps, norm_type)

    def forward(self, x: torch.Tensor, spectra: torch.Tensor | None = None) -> torch.Tensor:
        """`spectra` (`kernel_spectrum` of `self.filter` at x's size) may be given to reuse them (the inference
        fast path caches them: they depend on the weights and the map size only)."""
        branches = self.short_conv(self.in_proj(x))
        height, width = branches.shape[-2:]
        with autocast_disabled(branches):
            z, *gates = branches.float().split(self.width, dim=1)
            kernels = self.filter(height, width) if spectra is None else None
            for n, gate in enumerate(gates):
                mixed = long_conv2d(z, kernels[n]) if spectra is None else fft_long_conv2d(z, spectrum=spectra[n])
                z = gate * (mixed + self.skip[n].float().view(1, -1, 1, 1) * z)
        return self.proj(layout_like(z.to(branches.dtype), x))


# ------------------------------------------------------------------------------------------------ retention


def retention_decays(log_gammas: torch.Tensor, size: int) -> torch.Tensor:
    """Per-head 1-D decay matrices (heads, size, size): `gamma^|i - j|` with rows divided by the square root of
    their sum (RetNet's normalisation of D; the 2-D decay is the product of a row and a column factor)."""
    index = torch.arange(size, device=log_gammas.device, dtype=torch.float32)
    distance = (index[:, None] - index[None, :]).abs()
    decay = torch.exp(log_gammas.view(-1, 1, 1) * distance)
    return decay / decay.sum(dim=-1, keepdim=True).sqrt()


def retention_2d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_gammas: torch.Tensor) -> torch.Tensor:
    """2-D retention (RetNet's parallel form with a Manhattan-distance decay), computed exactly in
    O(N * (H + W) * d^2) instead of O(N^2 * d).

    `q`, `k`, `v` are (B, heads, H, W, d); `log_gammas` (heads,). With the normalised decay
    `D[n, m] = gamma^(|y_n - y_m| + |x_n - x_m|) / sqrt(sum_m' gamma^(...))` and `R = (q k^T / sqrt(d)) * D`,
    returns `R v / max(|R 1|, 1)` (RetNet's retention-score normalisation, signed sum). D is the Kronecker
    product of a row decay and a column decay, so `R v = q . (D applied to the outer products k v^T)` is two
    small matrix products along the columns and the rows; the row sums `R 1 = q . (D applied to k)` likewise.
    """
    batch, heads, height, width, dim = q.shape
    q = q * dim**-0.5
    decay_y = retention_decays(log_gammas, height).unsqueeze(0)  # (1, heads, H, H)
    decay_x = retention_decays(log_gammas, width).view(1, heads, 1, width, width)
    # Append a ones column to v: the same products then also give D k, for the normaliser.
    v1 = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1)
    outer = (k.unsqueeze(-1) * v1.unsqueeze(-2)).reshape(batch, heads, height, width, dim * (dim + 1))
    mixed = decay_x @ outer  # along the columns: (B, heads, H, W, d(d+1))
    mixed = (decay_y @ mixed.reshape(batch, heads, height, -1)).reshape(batch, heads, height, width, dim, dim + 1)
    out = (q.unsqueeze(-2) @ mixed).squeeze(-2)  # (B, heads, H, W, d + 1)
    numerator, row_sum = out[..., :dim], out[..., dim:]
    return numerator / row_sum.abs().clamp(min=1.0)


class RetentionMixer(TokenMixer):
    """2-D retention (RetNet / RMT's Manhattan self-attention without softmax): per head, every pixel attends
    to every other with weight `(q . k) gamma_h^(|dy| + |dx|)`, normalised per pixel and head (RetNet's
    GroupNorm), gated by `silu(g)` and projected.

    The decay is fixed per head from `config.retention_decay_exponents` (RetNet and RMT do not train it).
    Exact, and computed in O(H * W * (H + W)) by `retention_2d`.
    """

    def __init__(self, in_channels: int, out_channels: int, config: Any, norm_type: str | None = "batchnorm"):
        super().__init__()
        self.head_dim = config.attention_head_dim
        self.heads = attention_heads(in_channels, self.head_dim, config.attention_heads_ratio)
        total = self.heads * self.head_dim
        self.qkvg = ConvNormAct(in_channels, 4 * total, 1, use_norm=False)
        first, last = config.retention_decay_exponents
        exponents = [first + (last - first) * h / self.heads for h in range(self.heads)]
        # Plain floats (RMT's schedule): fixed by the config, so neither trained nor saved.
        self.log_gammas = [math.log(1.0 - 2.0**-e) for e in exponents]
        self.proj = _projection(total, out_channels, config.norm_eps, norm_type)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkvg = self.qkvg(x)
        batch, _, height, width = qkvg.shape
        with autocast_disabled(qkvg):
            # (B, 4, heads, d, H, W) -> four (B, heads, H, W, d) maps.
            parts = qkvg.float().reshape(batch, 4, self.heads, self.head_dim, height, width).permute(1, 0, 2, 4, 5, 3)
            q, k, v, gate = parts.unbind(0)
            log_gammas = torch.tensor(self.log_gammas, dtype=torch.float32, device=x.device)
            out = F.layer_norm(retention_2d(q, k, v, log_gammas), (self.head_dim,))
            out = out * F.silu(gate)
            out = out.permute(0, 1, 4, 2, 3).reshape(batch, -1, height, width)
        return self.proj(layout_like(out.to(qkvg.dtype), x))


# ------------------------------------------------------------------------------------------------ registry

# `config.token_mixer` -> mixer class (the names are `TOKEN_MIXERS`, which configs validate against).
TOKEN_MIXER_CLASSES: dict[str, type[TokenMixer]] = {
    "lite_mla": LiteMultiScaleAttention,
    "softmax": SoftmaxAttention,
    "hyena": HyenaMixer,
    "retention": RetentionMixer,
}


def build_token_mixer(name: str, channels: int, config: Any, norm_type: str | None = "batchnorm") -> TokenMixer:
    """The token mixer `name` for `channels` in and out, reading its hyperparameters from `config`."""
    if name not in TOKEN_MIXER_CLASSES:
        raise ValueError(f"Unknown token mixer {name!r}; expected one of {', '.join(TOKEN_MIXERS)}.")
    return TOKEN_MIXER_CLASSES[name].from_config(channels, config, norm_type=norm_type)


__all__ = [
    "TOKEN_MIXER_CLASSES",
    "TokenMixer",
    "LiteMultiScaleAttention",
    "MultiScaleAggregation",
    "SoftmaxAttention",
    "HyenaMixer",
    "HyenaFilter2d",
    "RetentionMixer",
    "attention_heads",
    "build_token_mixer",
    "relu_linear_attention",
    "softmax_attention",
    "fft_long_conv2d",
    "kernel_spectrum",
    "dft_long_conv2d",
    "direct_long_conv2d",
    "long_conv2d",
    "retention_2d",
    "retention_decays",
]
