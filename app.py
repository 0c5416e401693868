"""The evit-hf web demo as a Hugging Face Space (Gradio SDK): `python app.py` serves what `evit-hf app` serves.

Models come from the environment (Space variables): `EVIT_HF_SAM_MODEL`, `EVIT_HF_SEG_MODELS` (comma list),
`EVIT_HF_SR_MODEL`; unset means the released Hub models and the super-resolution checkpoint shipped in the
package. The address follows `GRADIO_SERVER_NAME` / `GRADIO_SERVER_PORT` (a Space sets 0.0.0.0:7860), else
127.0.0.1:7860. Where evit-hf is not installed (a Space built from this repository), it is imported from `src/`.
"""

import os
import sys
from pathlib import Path

try:
    import evit_hf  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from evit_hf.app import AppConfig, build_demo, launch  # noqa: E402

demo = build_demo(AppConfig.from_env())

if __name__ == "__main__":
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
