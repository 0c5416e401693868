"""SAM's mask decoder for many prompts on one image, with the prompt-independent work done once per image.

Owns `PromptBatchDecoder`: the same function as a SAM model's `prompt_encoder` + `mask_decoder` (transformers'
`SamPromptEncoder` / `SamMaskDecoder`, which `EfficientViTSamModel` and transformers' `SamModel` share), computed
from the model's own modules and weights in a cheaper order. Measured with `FlopCounterMode` on SAM-L0 (64x64
image tokens of 256 channels, 7 tokens for a point prompt), the stock decoder costs 1.77 GMACs per prompt, almost
all of it in projections of the 4,096 image tokens and in the upscaling convs. Three identities remove most of it:

- In the first two-way layer the image side does not depend on the prompt (image embedding + the dense no-mask
  embedding, plus the positional encoding): its keys and values (token-to-image) and its queries
  (image-to-token) are projected once per image (`prepare`).
- Attention over a handful of prompt tokens (T of them, H heads) is a rank-HT map, so a projection on the image
  side can move to the token side (associativity): `out_proj(softmax(.) V)` is `softmax(.) (V W_o)` and
  `q . k_proj(x)` is `(W_k^T q) . x`, which costs N x HT x C per prompt instead of N x C x C_int (HT = 56 < 128 =
  C_int for a point prompt). The bias of a key projection adds the same number to every score of a query and
  drops out of the softmax; a value bias passes through it (the weights sum to one). Where HT >= C_int (prompts
  with many points) the model's own attention module runs instead.
- The IoU head reads only the IoU token, so `decode` returns the predicted IoUs before any mask exists, and
  `masks` upscales only the prompts a caller keeps (the upscaling convs are 0.4 of the 1.77 GMACs), and only the
  mask tokens it asks for. The final token-to-image attention runs for the tokens that are read (the IoU token
  and the mask tokens of the requested output), not the point tokens.

Every step is exact algebra: `tests/test_sam_decoder.py` holds the results equal to the model's decoder within
fp32 tolerance for points, boxes, both together, mask inputs, many-point prompts and multimask on and off.
`attention_similarity` / `target_embedding` (PerSAM's extras) are not supported: call the model for those.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ImageContext:
    """What every prompt on one image shares, computed once by `PromptBatchDecoder.prepare`. Projections that
    meet a query are pre-multiplied by their attention's `scaling`."""

    image_tokens: torch.Tensor           # (N, C) image embedding + dense prompt embedding, one row per token
    positional: torch.Tensor             # (N, C) the positional encoding of the image tokens
    first_keys: torch.Tensor             # (H, d, N) token-to-image keys of the first layer (scaled, transposed)
    first_values: torch.Tensor           # (H, N, d) token-to-image values of the first layer
    first_queries: torch.Tensor          # (H, d, N) image-to-token queries of the first layer (bias, scaled)
    positional_keys: list[torch.Tensor]  # per later layer, then the final attention: (H, d, N) W_k pe
    positional_queries: list[torch.Tensor]  # per later layer: (H, d, N) W_q pe + b_q, scaled (image-to-token)
    size: tuple[int, int]                # (h, w) of the image embedding


@dataclass
class DecodedTokens:
    """The decoder's transformer output for P prompts: the IoUs, and what the masks are made from."""

    iou_scores: torch.Tensor       # (P, M) predicted IoU of each output mask
    hypernetwork: torch.Tensor     # (P, M, C/8) per output mask: the weights of its upscaled channels
    image_tokens: list[torch.Tensor]  # per prompt, (N, C): the image tokens after the two-way transformer
    size: tuple[int, int]          # (h, w) of the image embedding


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., L, H*d) -> (..., H, L, d)."""
    *lead, length, width = x.shape
    return x.reshape(*lead, length, heads, width // heads).transpose(-3, -2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(..., H, L, d) -> (..., L, H*d)."""
    *lead, heads, length, width = x.shape
    return x.transpose(-3, -2).reshape(*lead, length, heads * width)


def _by_head(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(P, T, H*d) -> (H, P*T, d): one matrix per head, every prompt's tokens stacked (a product with a
    per-image (H, d, N) operand then needs no copy of it per prompt)."""
    count, tokens, width = x.shape
    return x.view(count * tokens, heads, width // heads).transpose(0, 1)


def _weight_heads(linear: nn.Linear, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A projection C -> H*d as (H, d, C) weights and (H, d) biases."""
    out_features, in_features = linear.weight.shape
    return linear.weight.view(heads, out_features // heads, in_features), linear.bias.view(heads, -1)


# Token rows of the image embedding upscaled at once: 32 rows of 64 tokens make 4 MB of activations after the
# second conv, which stay in the CPU caches between the convs, the layer norm, the GELUs and the projection. On a
# Xeon with 2 MB of L2 per core (SAM-L0, 32 prompts, 3 masks each, 2 threads) 16 rows took 4.7-5.2 ms per prompt,
# 32 rows 4.6 and the whole 64 rows 4.5; tiles keep the working set bounded where the caches are smaller.
UPSCALE_TILE_ROWS = 32


class PromptBatchDecoder:
    """Prompt encoder + mask decoder of a SAM model for batches of prompts on one image (module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.transformer = model.mask_decoder.transformer
        self.num_mask_tokens = model.mask_decoder.num_mask_tokens

    # ---------------------------------------------------------------------------------------- per image
    @torch.inference_mode()
    def prepare(self, image_embeddings: torch.Tensor, mask_input: torch.Tensor | None = None) -> ImageContext:
        """The prompt-independent work for one image: `image_embeddings` (1, C, h, w) from the encoder and
        optionally one low-resolution mask prompt (1, 1, 4h, 4w) shared by every prompt of the batches."""
        if image_embeddings.ndim != 4 or image_embeddings.shape[0] != 1:
            raise ValueError(f"`image_embeddings` must be one image, (1, C, h, w), got "
                             f"{tuple(image_embeddings.shape)}.")
        size = tuple(image_embeddings.shape[-2:])
        if mask_input is not None:
            dense = self.prompt_encoder.mask_embed(mask_input.to(image_embeddings))
        else:
            dense = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        tokens = (image_embeddings + dense).flatten(2).transpose(1, 2)[0]
        positional = self.model.get_image_wide_positional_embeddings().to(tokens)
        if tuple(positional.shape[-2:]) != size:
            raise ValueError(f"The image embedding is {size[0]}x{size[1]} but the model's prompt encoder expects "
                             f"{positional.shape[-2]}x{positional.shape[-1]}.")
        positional = positional.flatten(2).transpose(1, 2)[0]
        first = self.transformer.layers[0]
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        with_pe = tokens + positional
        later_t2i = [layer.cross_attn_token_to_image for layer in self.transformer.layers[1:]]
        later_t2i.append(self.transformer.final_attn_token_to_image)
        later_i2t = [layer.cross_attn_image_to_token for layer in self.transformer.layers[1:]]
        return ImageContext(
            image_tokens=tokens,
            positional=positional,
            first_keys=(_split_heads(t2i.k_proj(with_pe), t2i.num_attention_heads) * t2i.scaling).transpose(1, 2)
            .contiguous(),
            first_values=_split_heads(t2i.v_proj(tokens), t2i.num_attention_heads).contiguous(),
            first_queries=_split_heads(i2t.q_proj(with_pe) * i2t.scaling, i2t.num_attention_heads).transpose(1, 2)
            .contiguous(),
            positional_keys=[_split_heads(F.linear(positional, attn.k_proj.weight), attn.num_attention_heads)
                             .transpose(1, 2).contiguous() for attn in later_t2i],
            positional_queries=[_split_heads(attn.q_proj(positional) * attn.scaling, attn.num_attention_heads)
                                .transpose(1, 2).contiguous() for attn in later_i2t],
            size=size,
        )

    # --------------------------------------------------------------------------------------- per prompt
    @torch.inference_mode()
    def sparse_embeddings(self, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                          boxes: torch.Tensor | None = None) -> torch.Tensor:
        """(P, S, C) prompt tokens of P prompts in the prompt frame: point sets (P, K, 2) with labels (P, K)
        (1 foreground, 0 background, -1 not a point, -10 padding; all ones when omitted) and/or boxes (P, 4)."""
        if points is None and boxes is None:
            raise ValueError("Give `points` and/or `boxes` (one row per prompt).")
        if points is not None and labels is None:
            labels = torch.ones(points.shape[:2], dtype=torch.long, device=points.device)
        sparse, _ = self.prompt_encoder(
            input_points=None if points is None else points[None],
            input_labels=None if labels is None else labels[None],
            input_boxes=None if boxes is None else boxes[None],
            input_masks=None,
        )
        return sparse[0]

    @torch.inference_mode()
    def decode(self, context: ImageContext, sparse: torch.Tensor, multimask_output: bool = True) -> DecodedTokens:
        """The two-way transformer and the IoU head for P prompts (`sparse`: (P, S, C) from `sparse_embeddings`).

        The returned IoUs are the model's `iou_scores`; `masks` turns the kept ones into mask logits."""
        decoder, transformer = self.mask_decoder, self.transformer
        count = sparse.shape[0]
        output_tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        prompt_tokens = torch.cat([output_tokens.expand(count, -1, -1), sparse.to(output_tokens)], dim=1)
        queries, keys = prompt_tokens, None  # keys None: the shared image tokens of `context`
        for index, layer in enumerate(transformer.layers):
            queries, keys = self._two_way_layer(index, layer, context, queries, keys, prompt_tokens)
        # Outputs read: the IoU token and the mask tokens of the requested output (mask 0 alone, or masks 1..M-1).
        masks = slice(1, None) if multimask_output else slice(0, 1)
        mask_rows = torch.arange(1, 1 + self.num_mask_tokens)[masks]
        rows = torch.cat([torch.zeros(1, dtype=torch.long), mask_rows])
        final = transformer.final_attn_token_to_image
        attended = self._token_to_image(final, (queries + prompt_tokens)[:, rows], keys,
                                        context.positional_keys[-1], context.positional)
        read = transformer.layer_norm_final_attn(queries[:, rows] + attended)
        iou_scores = decoder.iou_prediction_head(read[:, 0])[:, masks]
        hypernetwork = torch.stack(
            [decoder.output_hypernetworks_mlps[int(row) - 1](read[:, i + 1]) for i, row in enumerate(mask_rows)],
            dim=1,
        )
        return DecodedTokens(iou_scores, hypernetwork, keys, context.size)

    @torch.inference_mode()
    def masks(self, decoded: DecodedTokens, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Low-resolution mask logits (4h x 4w) of the decoded prompts: (P, M, 4h, 4w) for all, or (K, 4h, 4w)
        for the K pairs where `keep` (P, M) bool is set, in `keep.nonzero()` order. Only prompts with a kept
        mask go through the upscaling convs, and only the kept masks are projected."""
        height, width = decoded.size
        count, outputs = decoded.iou_scores.shape
        if keep is None:
            selected = [(prompt, slice(None)) for prompt in range(count)]
        else:  # (prompt, its kept outputs) in row-major order, as keep.nonzero()
            selected = [(prompt, [m for m, kept in enumerate(row) if kept]) for prompt, row in enumerate(keep.tolist())]
            selected = [(prompt, kept) for prompt, kept in selected if kept]
        total = count * outputs if keep is None else sum(len(kept) for _, kept in selected)
        logits = decoded.hypernetwork.new_empty(total, 4 * height, 4 * width)
        upscaling = self._upscaling_weights()
        start = 0
        for prompt, kept in selected:
            hypernetwork = decoded.hypernetwork[prompt, kept]
            rows = slice(start, start + hypernetwork.shape[0])
            self._upscale_and_project(decoded.image_tokens[prompt], hypernetwork, decoded.size, upscaling,
                                      logits[rows])
            start = rows.stop
        return logits.view(count, outputs, 4 * height, 4 * width) if keep is None else logits

    @torch.inference_mode()
    def __call__(self, context: ImageContext, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                 boxes: torch.Tensor | None = None, multimask_output: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(low-resolution mask logits (P, M, 4h, 4w), IoU scores (P, M)) of P prompts, as the model's
        `pred_masks[0]` / `iou_scores[0]` for the same prompts."""
        decoded = self.decode(context, self.sparse_embeddings(points, labels, boxes), multimask_output)
        return self.masks(decoded), decoded.iou_scores

    # ------------------------------------------------------------------------------------------ layers
    def _two_way_layer(self, index: int, layer: nn.Module, context: ImageContext, queries: torch.Tensor,
                       keys: list[torch.Tensor] | None,
                       prompt_tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One `SamTwoWayAttentionBlock` on (P, T, C) queries and per prompt (N, C) keys (None: the shared image).
        The image side is kept per prompt, not as one (P, N, C) tensor: each prompt's tokens (4 MB on SAM-L0) are
        then made and used one prompt at a time, while they are in the CPU caches, and never copied into a batch."""
        if layer.skip_first_layer_pe:
            queries = self._attend(layer.self_attn, queries, queries, queries)
        else:
            query = queries + prompt_tokens
            queries = queries + self._attend(layer.self_attn, query, query, queries)
        queries = layer.layer_norm1(queries)
        query = queries + prompt_tokens
        if keys is None:
            attended = self._shared_token_to_image(layer.cross_attn_token_to_image, query, context)
        else:
            attended = self._token_to_image(layer.cross_attn_token_to_image, query, keys,
                                            context.positional_keys[index - 1], context.positional)
        queries = layer.layer_norm2(queries + attended)
        queries = layer.layer_norm3(queries + layer.mlp(queries))
        image_queries = context.first_queries if keys is None else context.positional_queries[index - 1]
        keys = self._image_to_token(layer.cross_attn_image_to_token, image_queries, keys, context,
                                    queries + prompt_tokens, queries, layer.layer_norm4)
        return queries, keys

    @staticmethod
    def _attend(attention: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The model's own attention module on (P, L, C) inputs (one batch entry per prompt)."""
        out, _ = attention(query=query[:, None], key=key[:, None], value=value[:, None])
        return out[:, 0]

    @staticmethod
    def _associative(attention: nn.Module, tokens: int) -> bool:
        """Whether moving the image-side projections to the token side is cheaper: H*T < the internal width."""
        return attention.num_attention_heads * tokens < attention.internal_dim

    @staticmethod
    def _shared_token_to_image(attention: nn.Module, query: torch.Tensor, context: ImageContext) -> torch.Tensor:
        """Token-to-image attention of the first layer: keys and values projected once per image."""
        count, tokens, _ = query.shape
        q = _by_head(attention.q_proj(query), attention.num_attention_heads)  # (H, P*T, d)
        weights = torch.softmax(torch.bmm(q, context.first_keys), dim=-1)  # (H, P*T, N)
        pooled = torch.bmm(weights, context.first_values)  # (H, P*T, d)
        return attention.out_proj(pooled.view(-1, count, tokens, pooled.shape[-1]).permute(1, 2, 0, 3)
                                  .reshape(count, tokens, -1))

    def _token_to_image(self, attention: nn.Module, query: torch.Tensor, keys: list[torch.Tensor],
                        positional_keys: torch.Tensor, positional: torch.Tensor) -> torch.Tensor:
        """Token-to-image attention of (P, T, C) `query` tokens over each prompt's image tokens `keys` (N, C) (their
        positional encoding added for the scores), with the key / value projections moved to the token side."""
        count, tokens, channels = query.shape
        if not self._associative(attention, tokens):
            stacked = torch.stack(keys)
            return self._attend(attention, query, stacked + positional, stacked)
        heads = attention.num_attention_heads
        q = _split_heads(attention.q_proj(query), heads) * attention.scaling  # (P, H, T, d)
        key_weight, _ = _weight_heads(attention.k_proj, heads)  # the key bias is constant along the softmax
        value_weight, value_bias = _weight_heads(attention.v_proj, heads)
        moved = torch.einsum("phtd,hdc->phtc", q, key_weight).reshape(count, heads * tokens, channels)
        positional_scores = torch.bmm(q.transpose(0, 1).reshape(heads, count * tokens, -1), positional_keys)
        scores = positional_scores.view(heads, count, tokens, -1).transpose(0, 1).reshape(count, heads * tokens, -1)
        pooled = moved.new_empty(count, heads * tokens, channels)
        for prompt, image in enumerate(keys):  # one prompt at a time: its (H*T, N) weights stay in the CPU caches
            weights = torch.softmax(torch.addmm(scores[prompt], moved[prompt], image.T), dim=-1)
            torch.mm(weights, image, out=pooled[prompt])
        pooled = pooled.view(count, heads, tokens, channels)
        values = torch.einsum("phtc,hdc->phtd", pooled, value_weight) + value_bias[:, None]
        return attention.out_proj(_merge_heads(values))

    @staticmethod
    def _projected_values(attention: nn.Module, value_tokens: torch.Tensor) -> torch.Tensor:
        """(P, H*T, C) rows `V W_o` of image-to-token attention, per head: the attention weights (N, H*T) of a prompt
        times these is `out_proj(softmax(.) V)` (associativity). Each head's weights sum to one over its tokens, so
        the output bias spreads as bias / H over the rows."""
        count = value_tokens.shape[0]
        heads = attention.num_attention_heads
        values = _split_heads(attention.v_proj(value_tokens), heads)  # (P, H, T, d)
        out_weight = attention.out_proj.weight  # (C, H*d)
        out_heads = out_weight.view(out_weight.shape[0], heads, -1).permute(1, 2, 0)  # (H, d, C)
        return (values @ out_heads).reshape(count, -1, out_weight.shape[0]) + attention.out_proj.bias / heads

    def _image_to_token(self, attention: nn.Module, image_queries: torch.Tensor, keys: list[torch.Tensor] | None,
                        context: ImageContext, key_tokens: torch.Tensor, value_tokens: torch.Tensor,
                        norm: nn.Module) -> list[torch.Tensor]:
        """Per prompt, `norm(image tokens + image-to-token attention)` (N, C): the image tokens (the prompt's `keys`,
        or in the first layer, None, the shared ones of `context`) plus their positional encoding attend to the
        prompt's (T, C) tokens. `image_queries` (H, d, N) is the part of the queries projected once per image: the
        whole queries in the first layer, the positional part and bias in a later one, where the projection of the
        prompt's own image tokens moves to the token side, as the output projection does in every layer.

        The scores are made transposed, (H, T, N), so that the softmax over the T tokens runs along rows of N (on
        SAM-L0, 2 threads: 0.09 ms per point prompt, against 0.35 ms with the T tokens as the last dimension), and
        one prompt at a time, so that its scores, weights, sum and norm meet in the CPU caches."""
        count, tokens, channels = key_tokens.shape
        heads = attention.num_attention_heads
        if not self._associative(attention, tokens):
            images = context.image_tokens.expand(count, -1, -1) if keys is None else torch.stack(keys)
            return list(norm(images + self._attend(attention, images + context.positional, key_tokens, value_tokens)))
        k = _split_heads(attention.k_proj(key_tokens), heads)  # (P, H, T, d)
        if keys is not None:
            query_weight, _ = _weight_heads(attention.q_proj, heads)  # its bias is in `image_queries`
            moved = torch.einsum("phtd,hdc->phtc", k * attention.scaling, query_weight).reshape(
                count, heads * tokens, channels)
        projected = self._projected_values(attention, value_tokens)
        out = []
        for prompt in range(count):
            scores = torch.bmm(k[prompt], image_queries).view(heads * tokens, -1)  # (H*T, N)
            if keys is not None:
                scores = torch.addmm(scores, moved[prompt], keys[prompt].T)
            weights = torch.softmax(scores.view(heads, tokens, -1), dim=1).view(heads * tokens, -1)
            if keys is None:
                out.append(norm(torch.addmm(context.image_tokens, weights.T, projected[prompt])))
            else:  # the prompt's tokens are not read again: add in place (a 4 MB copy less per prompt)
                out.append(norm(keys[prompt].addmm_(weights.T, projected[prompt])))
        return out

    # ---------------------------------------------------------------------------------------- upscaling
    def _upscaling_weights(self) -> tuple[torch.Tensor, ...]:
        """The upscaling convs as matrices: each ConvTranspose2d(kernel 2, stride 2) maps one input pixel to its
        2x2 output pixels, `out[o, 2i + a, 2j + b] = sum_c in[c, i, j] W[c, o, a, b] + bias[o]`, so it is a
        (C_in, 4 C_out) matrix product in a channels-last layout."""
        first, second = self.mask_decoder.upscale_conv1, self.mask_decoder.upscale_conv2
        return (first.weight.permute(0, 2, 3, 1).reshape(first.weight.shape[0], -1), first.bias.repeat(4),
                second.weight.permute(0, 2, 3, 1).reshape(second.weight.shape[0], -1), second.bias.repeat(4))

    def _upscale_and_project(self, image_tokens: torch.Tensor, hypernetwork: torch.Tensor, size: tuple[int, int],
                             upscaling: tuple[torch.Tensor, ...], out: torch.Tensor,
                             rows_per_tile: int = UPSCALE_TILE_ROWS) -> None:
        """Mask logits of one prompt into `out` (K, 4h, 4w): its (N, C) image tokens through the upscaling convs,
        each output pixel's channels weighted by the K (K, C/8) hypernetwork rows. Done a few token rows at a
        time, so that the activations (16x the tokens' pixels) stay in the CPU caches between operators."""
        decoder = self.mask_decoder
        norm, activation = decoder.upscale_layer_norm, decoder.activation
        first_weight, first_bias, second_weight, second_bias = upscaling
        middle, channels = first_weight.shape[1] // 4, second_weight.shape[1] // 4
        height, width = size
        count = hypernetwork.shape[0]
        # (K, token row i, sub-rows a, c, token column j, sub-columns b, d): pixel (4i + 2a + c, 4j + 2b + d)
        pixels = out.view(count, height, 2, 2, width, 2, 2)
        for top in range(0, height, rows_per_tile):
            bottom = min(height, top + rows_per_tile)
            tokens = image_tokens[top * width:bottom * width]
            upscaled = torch.addmm(first_bias, tokens, first_weight).view(-1, middle)
            upscaled = activation(F.layer_norm(upscaled, (middle,), norm.weight, norm.bias, norm.eps))
            upscaled = activation(torch.addmm(second_bias, upscaled, second_weight)).view(-1, channels)
            # (K, i, j, a, b, c, d) -> (K, i, a, c, j, b, d)
            logits = torch.mm(hypernetwork, upscaled.T).view(count, bottom - top, width, 2, 2, 2, 2)
            pixels[:, top:bottom].copy_(logits.permute(0, 1, 3, 5, 2, 4, 6))


__all__ = ["DecodedTokens", "ImageContext", "PromptBatchDecoder"]
