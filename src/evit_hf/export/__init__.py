"""Export of EfficientViT models: one I/O specification per task (`specs`), ONNX through `torch.onnx` or
Optimum (`onnx`, `optimum`), LiteRT / TFLite (`tflite`), TensorRT engines (`tensorrt`) and ONNX Runtime INT8
quantization (`quantize`). Optional back ends are imported lazily by the modules that need them."""

from .onnx import DEFAULT_ATOL, DEFAULT_OPSET, ExportedGraph, ExportValidationError, export_onnx, ort_session
from .specs import TASKS, ExportGraph, SamImageEncoder, SamPromptMaskDecoder, check_task, export_graphs, task_of

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_OPSET",
    "TASKS",
    "ExportGraph",
    "ExportValidationError",
    "ExportedGraph",
    "SamImageEncoder",
    "SamPromptMaskDecoder",
    "check_task",
    "export_graphs",
    "export_onnx",
    "ort_session",
    "task_of",
]
