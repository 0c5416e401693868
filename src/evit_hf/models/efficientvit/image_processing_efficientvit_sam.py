"""EfficientViT-SAM preprocessing and mask post-processing, on transformers' PIL-backend SAM processor.

Owns `EfficientViTSamImageProcessor`. The pixels follow the original predictor: bilinear resize of the
longest side to the encoder resolution (`encoder_size`: 512 for the L models, 1024 for XL; new side
`int(old * scale + 0.5)`), rescale to [0, 1], ImageNet mean/std, zero-pad bottom/right to a square. The prompt
frame is 1024 pixels for every variant, so `size` / `pad_size` stay at 1024 and `reshaped_input_sizes` are
reported in that frame: `SamProcessor` then rescales points and boxes to the frame the prompt encoder uses,
and `post_process_masks` crops the low-res masks exactly as the original (1024 -> crop -> original size).
`post_process_for_mask_generation` uses a pure-torch NMS (the stock one needs torchvision).

Prompts given to the processor itself (`processor(images, input_points=..., input_labels=..., input_boxes=...)`,
original-image pixels) are checked per image with `check_prompts` and returned in the prompt frame, like
`SamProcessor` returns them. `SamProcessor` keeps the prompts to itself (the image processor never sees
them), so validate before calling it: `processor.check_prompts(image_size, ...)`, or `validate_prompts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import SizeDict
from transformers.models.sam.image_processing_pil_sam import (
    SamImageProcessorKwargs,
    SamImageProcessorPil,
    _rle_to_mask,
)


class EfficientViTSamImageProcessorKwargs(SamImageProcessorKwargs, total=False):
    r"""
    encoder_size (`int`, *optional*, defaults to 1024):
        Side of the square image the encoder takes (512 for EfficientViT-SAM-L*, 1024 for XL*).
    """

    encoder_size: int


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (x0, y0, x1, y1) boxes, (N, M)."""
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]).clamp(min=0) * (boxes_a[:, 3] - boxes_a[:, 1]).clamp(min=0)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]).clamp(min=0) * (boxes_b[:, 3] - boxes_b[:, 1]).clamp(min=0)
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp(min=torch.finfo(inter.dtype).tiny)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression (torchvision.ops.nms semantics): kept indices by decreasing score."""
    boxes, scores = boxes.float(), scores.float().reshape(-1)
    order = scores.argsort(descending=True)
    if order.numel() == 0:
        return order
    ious = box_iou(boxes[order], boxes[order])
    suppressed = torch.zeros(order.numel(), dtype=torch.bool)
    keep = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou_threshold
    return order[torch.tensor(keep, dtype=torch.long)]


def _as_list(value: Any) -> Any:
    """Tensors / arrays as nested lists, anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _stack(key: str, arrays: list[np.ndarray]) -> np.ndarray:
    if any(a.shape != arrays[0].shape for a in arrays):
        shapes = [tuple(a.shape) for a in arrays]
        raise ValueError(
            f"`{key}` must have the same shape for every image to be batched, got {shapes}; pad point sets with "
            "label -10 or process the images one at a time."
        )
    return np.stack(arrays)


class EfficientViTSamImageProcessor(SamImageProcessorPil):
    r"""
    Image processor for EfficientViT-SAM (PIL backend, no torchvision).

    Use `EfficientViTSamImageProcessor(encoder_size=512)` for the L models and the default (1024) for XL, or
    `for_config(model.config)`. Prompts given to `SamProcessor` are in original-image pixels and come out in
    the 1024 prompt frame for every variant.
    """

    # `save_pretrained` writes the `auto_map` and this file (with the files it imports) into the folder, so
    # that `AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)` works where evit-hf is not installed.
    _auto_class = "AutoImageProcessor"

    encoder_size = 1024
    valid_kwargs = EfficientViTSamImageProcessorKwargs

    @classmethod
    def for_config(cls, config, **kwargs) -> EfficientViTSamImageProcessor:
        """The processor of an `EfficientViTSamConfig` (its encoder resolution and prompt frame)."""
        frame = int(config.prompt_encoder_config.image_size)
        return cls(
            encoder_size=int(config.vision_config.image_size),
            size={"longest_edge": frame},
            pad_size={"height": frame, "width": frame},
            **kwargs,
        )

    def encoder_shape(self, height: int, width: int, encoder_size: int | None = None) -> tuple[int, int]:
        """(height, width) of a `height` x `width` image inside the encoder's square input: the longest side
        becomes `encoder_size` (default `self.encoder_size`), the other `int(old * scale + 0.5)` (half up, as
        the original predictor); the rest of the square is zero padding."""
        return self._get_preprocess_shape((int(height), int(width)), int(encoder_size or self.encoder_size))

    def _preprocess(
        self,
        images: list[np.ndarray],
        do_resize: bool,
        size: SizeDict,
        resample,
        do_center_crop: bool,
        crop_size: SizeDict,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean,
        image_std,
        do_pad: bool | None,
        pad_size: SizeDict | None,
        encoder_size: int | None = None,
        **kwargs,
    ) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
        if size is not None and size.longest_edge is None:
            raise ValueError("EfficientViT-SAM needs `size={'longest_edge': <prompt frame>}`.")
        if not (
            do_rescale or do_normalize
        ):  # segmentation maps: the stock path (`mask_size`, `mask_pad_size`)
            return super()._preprocess(
                images,
                do_resize,
                size,
                resample,
                do_center_crop,
                crop_size,
                do_rescale,
                rescale_factor,
                do_normalize,
                image_mean,
                image_std,
                do_pad,
                pad_size,
            )
        frame = size.longest_edge
        side = int(encoder_size or self.encoder_size)
        encoder = SizeDict(longest_edge=side)
        processed, reshaped_input_sizes = [], []
        for image in images:
            height, width = image.shape[-2:]
            if do_resize:
                image = self.resize(image=image, size=encoder, resample=resample)
            reshaped_input_sizes.append(
                self._get_preprocess_shape((height, width), frame) if do_resize else (height, width)
            )
            if do_rescale:
                image = self.rescale(image, rescale_factor)
            if do_normalize:
                image = self.normalize(image, image_mean, image_std)
            processed.append(image)
        if do_pad:
            processed = self.pad(processed, pad_size=SizeDict(height=side, width=side))
        return processed, reshaped_input_sizes

    def preprocess(
        self,
        images,
        segmentation_maps=None,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
        **kwargs,
    ) -> BatchFeature:
        r"""
        Preprocess images and, optionally, their prompts (original-image pixels, one entry per image).

        input_points (*optional*):
            Per image `[[x, y], ...]` (one point set) or `[[[x, y], ...], ...]` (one point set per mask).
        input_labels (*optional*):
            Per image one label per point, nested like `input_points` without the coordinates.
        input_boxes (*optional*):
            Per image `[[x0, y0, x1, y1], ...]`, one box per mask.

        Prompts are validated with `check_prompts` (a `ValueError` names the problem) and returned as
        `input_points` (images, masks, points, 2), `input_labels` (images, masks, points) and `input_boxes`
        (images, masks, 4) in the prompt frame of `reshaped_input_sizes`.
        """
        given = input_points is not None or input_labels is not None or input_boxes is not None
        encoding = super().preprocess(images, segmentation_maps, **kwargs)
        if not given:
            return encoding
        original_sizes = [tuple(int(v) for v in size) for size in _as_list(encoding["original_sizes"])]
        reshaped_sizes = [tuple(int(v) for v in size) for size in _as_list(encoding["reshaped_input_sizes"])]
        prompts = self.validate_prompts(original_sizes, input_points, input_labels, input_boxes)
        for key, per_image in prompts.items():
            if key == "input_labels":
                encoding[key] = _stack(key, [labels.astype(np.int64) for labels in per_image])
                continue
            scaled = []
            for coords, (old_h, old_w), (new_h, new_w) in zip(per_image, original_sizes, reshaped_sizes):
                coords = coords.copy()
                coords[..., 0::2] *= new_w / old_w
                coords[..., 1::2] *= new_h / old_h
                scaled.append(coords)
            encoding[key] = _stack(key, scaled)
        if str(kwargs.get("return_tensors") or "") == "pt":
            for key in prompts:
                encoding[key] = torch.from_numpy(encoding[key])
        return encoding

    def validate_prompts(
        self,
        original_sizes: Sequence[Sequence[int]],
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
    ) -> dict[str, list[np.ndarray]]:
        """Check the prompts of a batch (one entry per image, original pixels) with `check_prompts`.

        Returns the given prompts per image as float / int arrays, points as (masks, points, 2), labels as
        (masks, points) and boxes as (masks, 4); a single point set / box per image may drop the mask level.
        """
        num_images = len(original_sizes)
        if input_points is None and input_boxes is None:
            if input_labels is not None:
                raise ValueError("`input_labels` were given without `input_points`.")
            raise ValueError("No prompt: give `input_points` and/or `input_boxes`.")
        given = {"input_points": input_points, "input_labels": input_labels, "input_boxes": input_boxes}
        levels = {"input_points": 3, "input_labels": 2, "input_boxes": 2}  # ndim per image with the mask level
        prompts: dict[str, list[np.ndarray]] = {}
        for key, value in given.items():
            if value is None:
                continue
            value = _as_list(value)
            if not isinstance(value, (list, tuple)) or len(value) != num_images:
                got = len(value) if isinstance(value, (list, tuple)) else type(value).__name__
                raise ValueError(f"`{key}` needs one entry per image: {num_images} image(s), got {got}.")
            arrays = []
            for index, entry in enumerate(value):
                try:
                    array = np.asarray(entry, dtype=np.int64 if key == "input_labels" else np.float64)
                except (TypeError, ValueError) as err:  # ragged nesting
                    raise ValueError(
                        f"`{key}` of image {index} is not a regular nested list (every point set needs the "
                        f"same number of points; pad with label -10): {err}"
                    ) from err
                if array.size == 0:
                    raise ValueError(f"`{key}` of image {index} is empty: give at least one prompt per image.")
                if array.ndim == levels[key] - 1:  # one point set / box per image
                    array = array[None]
                arrays.append(array)
            prompts[key] = arrays
        for index, size in enumerate(original_sizes):
            try:
                self.check_prompts(
                    size, **{key: arrays[index] for key, arrays in prompts.items()}
                )
            except ValueError as err:
                raise ValueError(f"Image {index}: {err}" if num_images > 1 else str(err)) from None
        return prompts

    def check_prompts(
        self,
        original_size: Sequence[int],
        input_points: Sequence | None = None,
        input_labels: Sequence | None = None,
        input_boxes: Sequence | None = None,
    ) -> None:
        """Raise a clear `ValueError` for prompts (original-image pixels, one image) the model cannot use.

        `input_points`: point sets `[[x, y], ...]` (one set per mask); `input_labels`: one label list per set;
        `input_boxes`: `[x0, y0, x1, y1]` per mask.
        """
        height, width = int(original_size[0]), int(original_size[1])
        if input_points is None and input_boxes is None:
            if input_labels is not None:
                raise ValueError("`input_labels` were given without `input_points`.")
            raise ValueError("No prompt: give `input_points` and/or `input_boxes`.")
        if input_points is not None:
            points = np.asarray(input_points, dtype=np.float64)
            if points.ndim != 3 or points.shape[-1] != 2 or points.shape[1] == 0:
                raise ValueError(
                    f"`input_points` must be point sets [[[x, y], ...], ...] (masks, points, 2), got "
                    f"shape {points.shape}."
                )
            outside = (
                (points[..., 0] < 0)
                | (points[..., 0] > width)
                | (points[..., 1] < 0)
                | (points[..., 1] > height)
            )
            if input_labels is not None and np.shape(input_labels) == points.shape[:2]:
                outside &= np.asarray(input_labels) != -10  # padding points (label -10) may lie anywhere
            if outside.any():
                raise ValueError(
                    f"Point(s) {points[outside].tolist()} lie outside the {width}x{height} image."
                )
            if input_labels is not None:
                labels = np.asarray(input_labels)
                if labels.shape != points.shape[:2]:
                    raise ValueError(
                        f"`input_labels` must have shape {points.shape[:2]} (one label per point), "
                        f"got {labels.shape}."
                    )
                if not np.isin(labels, (-10, -1, 0, 1)).all():
                    raise ValueError(
                        "Point labels must be 1 (foreground), 0 (background), -1 or -10 (padding)."
                    )
        elif input_labels is not None:
            raise ValueError("`input_labels` were given without `input_points`.")
        if input_boxes is not None:
            boxes = np.asarray(input_boxes, dtype=np.float64)
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or boxes.shape[0] == 0:
                raise ValueError(f"`input_boxes` must be [[x0, y0, x1, y1], ...], got shape {boxes.shape}.")
            if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
                raise ValueError("Boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0.")
            if (boxes[:, :2] < 0).any() or (boxes[:, 2] > width).any() or (boxes[:, 3] > height).any():
                raise ValueError(f"Box(es) {boxes.tolist()} reach outside the {width}x{height} image.")
            if input_points is not None and len(boxes) != len(input_points):
                raise ValueError(
                    f"Give one box per point set: {len(boxes)} boxes vs {len(input_points)} point sets."
                )

    def post_process_for_mask_generation(self, all_masks, all_scores, all_boxes, crops_nms_thresh):
        """Non-maximum suppression over the masks of all crops (pure torch), then RLE -> binary masks."""
        keep = nms(all_boxes, all_scores, crops_nms_thresh)
        rle_masks = [all_masks[i] for i in keep.tolist()]
        masks = [_rle_to_mask(rle) for rle in rle_masks]
        return masks, all_scores[keep], rle_masks, all_boxes[keep]


__all__ = ["EfficientViTSamImageProcessor", "box_iou", "nms"]
