"""What the image tasks share beyond `TrainingTask`: the image processor saved with the model, and classes.

That processor also makes every sample: evaluation samples are `processor(image)` and the training
augmentation hands it the pixels it chose (`evit_hf.training.transforms`), so a trained model is served with
the preprocessing it was trained and evaluated with.
"""

from __future__ import annotations

from typing import Any

from .arguments import TrainingArguments
from .trainer import TrainingTask


class ImageTask(TrainingTask):
    """A task on images whose `processor` preprocesses every sample and is saved with the final model."""

    def __init__(self, args: TrainingArguments, processor: Any = None) -> None:
        super().__init__(args)
        self.processor = processor  # None until the model is known (SAM: its encoder resolution)

    def image_processor(self, model):
        return self.processor


class LabelledImageTask(ImageTask):
    """An image task with a set of classes: from the dataset, `--num_labels` or the checkpoint (`id2label`)."""

    def __init__(self, args: TrainingArguments, processor: Any = None) -> None:
        super().__init__(args, processor)
        self.id2label: dict[int, str] | None = None


__all__ = ["ImageTask", "LabelledImageTask"]
