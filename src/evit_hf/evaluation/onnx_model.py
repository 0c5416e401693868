"""Evaluate an exported ONNX file (fp32 or INT8) with ONNX Runtime under the same protocol as the PyTorch model.

`evit-hf eval seg|cls|sr --onnx FILE` swaps the PyTorch model for `OnnxRuntimeModel`: it is called like the
model (`model(pixel_values=...)`) and returns the graph's outputs as attributes (`.logits`,
`.reconstruction`), so preprocessing, sliding windows, tiling and scoring are the ones the PyTorch evaluation
uses, and the two results differ only by what the runtime (or INT8 quantization) changes. This is how the
accuracy cost of `evit-hf export --quantize static` is measured on real data.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class OnnxRuntimeModel:
    """An `evit-hf export` graph in an ONNX Runtime session, called like the PyTorch model it came from.

    Args:
        path: the `.onnx` file (`model.onnx`, `model_int8.onnx`, ...).
        config: the PyTorch model's config (labels, upscaling factor), checked against the graph's outputs.
        output: the output the evaluation reads (`logits` or `reconstruction`); the file must have it.
        device: `cpu` or `cuda` (ONNX Runtime's CUDA provider).
    """

    def __init__(self, path: str | Path, config: Any, output: str, device: str = "cpu") -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError("--onnx needs ONNX Runtime: pip install onnxruntime") from err
        from ..export.onnx import ort_session

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"--onnx {path}: no such file.")
        kind = torch.device(device).type
        if kind not in PROVIDERS:
            raise ValueError(f"--onnx runs on {' or '.join(PROVIDERS)}, not {device!r}.")
        if PROVIDERS[kind] not in ort.get_available_providers():
            raise ValueError(f"ONNX Runtime here has no {PROVIDERS[kind]} (available: "
                             f"{', '.join(ort.get_available_providers())}); use --device cpu.")
        try:
            self.session = ort_session(path, providers=[PROVIDERS[kind]])
        except Exception as err:  # noqa: BLE001  (ORT raises its own Fail/InvalidProtobuf types)
            raise ValueError(f"--onnx {path} is not a readable ONNX model: {err}") from err
        self.path = path
        self.config = config
        self.device = torch.device("cpu")  # inputs are handed over as numpy arrays from the CPU
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        if self.input_names != ["pixel_values"] or output not in self.output_names:
            raise ValueError(f"--onnx {path} takes {self.input_names} and returns {self.output_names}; this "
                             f"evaluation needs pixel_values -> {output} (an `evit-hf export` graph of this task).")
        self.output = output

    def eval(self) -> OnnxRuntimeModel:
        return self

    def to(self, device: Any) -> OnnxRuntimeModel:
        return self

    def __call__(self, pixel_values: torch.Tensor) -> SimpleNamespace:
        pixels = pixel_values.detach().float().cpu().contiguous().numpy()
        try:
            (result,) = self.session.run([self.output], {"pixel_values": pixels})
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"--onnx {self.path.name} failed on input {tuple(pixels.shape)}: {err}") from err
        self._check(result, pixels.shape)
        return SimpleNamespace(**{self.output: torch.from_numpy(np.ascontiguousarray(result))})

    def _check(self, result: np.ndarray, input_shape: tuple[int, ...]) -> None:
        """The graph must belong to the config: same number of classes, same upscaling factor."""
        if self.output == "logits":
            num_labels = int(self.config.num_labels)
            if result.shape[1] != num_labels:
                raise ValueError(f"--onnx {self.path.name} predicts {result.shape[1]} classes but the model "
                                 f"config has {num_labels}: the file was exported from another model.")
        elif self.output == "reconstruction":
            scale = int(self.config.upscale)
            if tuple(result.shape[-2:]) != (input_shape[-2] * scale, input_shape[-1] * scale):
                raise ValueError(f"--onnx {self.path.name} maps {tuple(input_shape[-2:])} to "
                                 f"{tuple(result.shape[-2:])}, not x{scale} as the model config says.")


__all__ = ["OnnxRuntimeModel"]
