"""Model-card templates (plain `string.Template`, no Jinja): the card layout and each family's fixed text.

Placeholders are `$name`; `evit_hf.release.cards` fills them with what it computes or looks up (params and
MACs, latency with its setting, reported results, labels, preprocessing read from the processor). The
templates live in the package, as Python strings, so `evit-hf release` finds them in any install;
`hub_cards/` holds the generated cards. The two ```python blocks under "How to use" are run by the tests.
"""

from __future__ import annotations

from string import Template

CARD = Template("""\
---
${front_matter}---

# ${title}

${summary}

${facts}

## Model description

${description}

## Intended uses and limitations

${intended_use}

## How to use

With evit-hf installed (importing it registers the model, processor and pipeline classes with transformers):

```python
${snippet}
```

Without evit-hf: this repo carries the model code, so `trust_remote_code=True` is enough (transformers 5):

```python
${snippet_remote}
```

## Preprocessing

${preprocessing}

## Labels

${labels}

## Results

${results}

## Size and speed

${size_speed}

## Provenance

${provenance}

## License

Apache-2.0, as the original EfficientViT code and weights ([LICENSE](https://github.com/mit-han-lab/efficientvit/blob/master/LICENSE)).

## Citation

```bibtex
${citation}
```
""")

EFFICIENTVIT = ("EfficientViT ([Cai et al., ICCV 2023](https://arxiv.org/abs/2205.14756)) is a family of vision "
                "backbones built around lightweight multi-scale ReLU linear attention: its cost grows linearly "
                "with the number of pixels, depthwise convolutions aggregate nearby tokens at several scales, and "
                "MBConv blocks add local features. That makes it fast at the high resolutions dense prediction "
                "needs.")

DESCRIPTION = {
    "cls": Template(EFFICIENTVIT + """

This repo holds the EfficientViT-${MODEL} image classifier (backbone, 1x1 conv + global pooling + two linear
layers) trained on ImageNet-1k by the original authors and evaluated at ${resolution}x${resolution}. The
same weights give multi-scale features through `AutoBackbone` / `EfficientViTModel` (strides 2 to 32)."""),
    "seg": Template(EFFICIENTVIT + """

This repo holds EfficientViT-Seg-${MODEL} for ${dataset_name} semantic segmentation, trained by the original
authors: an EfficientViT-${MODEL} backbone and the original head (the last three stages projected by 1x1 convs,
bicubically upsampled to stride 8 and summed, ${head_blocks}, a classifier). Logits come out at stride 8 and
are upsampled bicubically to the image size."""),
    "sam": Template(EFFICIENTVIT + """

EfficientViT-SAM ([Zhang et al., 2024](https://arxiv.org/abs/2402.05008)) keeps Segment Anything's prompt
encoder and mask decoder and replaces its ViT-H image encoder with EfficientViT: distilled from SAM-ViT-H,
then trained end to end on SA-1B by the original authors. This repo holds EfficientViT-SAM-${MODEL}
(EfficientViT-${BACKBONE} backbone, image encoder input ${encoder_size}x${encoder_size}, 64x64x256
embeddings). It keeps transformers' `SamModel` interface: `pixel_values` or `image_embeddings`, point / box /
mask prompts, `pred_masks` (256x256 low-resolution logits) and `iou_scores`."""),
    "sr": Template(EFFICIENTVIT + """

This repo holds an EfficientViT super-resolution model (preset `${variant}`, x${upscale}), built from the
EfficientViT paper's description of its SR models: a 3x3 conv stem, ${num_blocks} EfficientViT blocks of
width ${hidden_size} at the input resolution, a long skip, a pixel-shuffle upsampler and a global residual over
the bicubic-upsampled input. The original authors released SR results but no SR code or weights: these weights
were trained by evit-hf (see Provenance), not by them."""),
}

INTENDED_USE = {
    "cls": Template("""\
- Classifying photographs into the 1000 ImageNet-1k classes, and as an ImageNet-pretrained backbone for
  fine-tuning (classification, or segmentation heads through `AutoBackbone`).
- The checkpoint is tuned for ${resolution}x${resolution} inputs (the authors re-estimate BatchNorm statistics per
  resolution); each released resolution has its own repo.
- Limitations: the labels are ImageNet's 1000 classes and inherit its biases (web photographs, object-centric);
  accuracy on other kinds of images (medical, satellite, drawings) was not evaluated. Not for decisions
  about people."""),
    "seg": Template("""\
- Per-pixel labelling of ${use_case} into the ${num_labels} ${dataset_name} classes, and as a starting point
  for fine-tuning on other label sets (a new classifier is initialised for a different number of classes).
- The original evaluation runs at ${eval_size}; the preprocessing here reproduces it.
- Limitations: trained on ${dataset_name} only (${dataset_scope}); quality on other domains was not
  evaluated. Not a safety component for driving or any other real-time control."""),
    "sam": Template("""\
- Promptable, class-agnostic segmentation: one or more masks for a point, a box or a coarse mask prompt,
  and "segment everything" through the `mask-generation` pipeline (a grid of point prompts).
- Prompts are in the original image's pixels; the processor maps them to the 1024-pixel frame SAM's prompt
  encoder uses (also for the L models, whose encoder sees 512x512).
- Limitations: masks carry no class labels and no text prompts are supported; the image encoder sees the
  image resized to ${encoder_size} pixels on its longest side, so small or thin structures may be missed."""),
    "sr": Template("""\
- Upscaling RGB images by x${upscale} (`image-super-resolution` pipeline; large images go tile by tile).
- Limitations: trained on ${train_description}; a demonstration of the architecture, not a
  replacement for SR models trained on DIV2K-scale data. The degradation it learned is bicubic downscaling,
  so noisy, blurred or compressed images are out of distribution."""),
}

SNIPPET = {
    "cls": Template("""\
import evit_hf  # registers EfficientViT with transformers
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline

repo = "${repo_id}"
image = Image.open("photo.jpg")

classifier = pipeline("image-classification", model=repo)
print(classifier(image, top_k=5))

processor = AutoImageProcessor.from_pretrained(repo)
model = AutoModelForImageClassification.from_pretrained(repo).eval()
with torch.inference_mode():
    logits = model(**processor(image, return_tensors="pt")).logits
print(model.config.id2label[logits.argmax(-1).item()])"""),
    "seg": Template("""\
import evit_hf  # registers EfficientViT with transformers
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation, pipeline

repo = "${repo_id}"
image = Image.open("photo.jpg")

segmenter = pipeline("image-segmentation", model=repo)
for segment in segmenter(image):  # one binary mask per class present, at the image size
    print(segment["label"], segment["mask"].size)

processor = AutoImageProcessor.from_pretrained(repo)
model = AutoModelForSemanticSegmentation.from_pretrained(repo).eval()
with torch.inference_mode():
    outputs = model(**processor(image, return_tensors="pt"))
label_map = processor.post_process_semantic_segmentation(outputs, target_sizes=[image.size[::-1]])[0]
print(label_map.shape)  # (height, width) class indices"""),
    "sam": Template("""\
import evit_hf  # registers EfficientViT with transformers
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

repo = "${repo_id}"
image = Image.open("photo.jpg").convert("RGB")
processor = AutoProcessor.from_pretrained(repo)
model = AutoModel.from_pretrained(repo).eval()

point = [image.width // 2, image.height // 2]  # (x, y) in image pixels
inputs = processor(image, input_points=[[point]], return_tensors="pt")
with torch.inference_mode():
    outputs = model(**inputs)  # 3 candidate masks per prompt (multimask_output=True)
masks = processor.post_process_masks(outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])
print(masks[0].shape, outputs.iou_scores)
# Everything mode: pipeline("mask-generation", model=repo, points_per_batch=64)(image)"""),
    "sr": Template("""\
import evit_hf  # registers EfficientViT with transformers
from PIL import Image
from transformers import pipeline

upscaler = pipeline("image-super-resolution", model="${repo_id}")
image = Image.open("photo.jpg")
upscaled = upscaler(image)  # a PIL image, ${upscale}x the size; large images go in 512-pixel tiles
upscaled.save("photo_x${upscale}.png")
print(image.size, "->", upscaled.size)"""),
}

SNIPPET_REMOTE = {
    "cls": Template("""\
from transformers import pipeline

classifier = pipeline("image-classification", model="${repo_id}", trust_remote_code=True)
print(classifier("photo.jpg", top_k=5))"""),
    "seg": Template("""\
from transformers import pipeline

segmenter = pipeline("image-segmentation", model="${repo_id}", trust_remote_code=True)
print([segment["label"] for segment in segmenter("photo.jpg")])"""),
    "sam": Template("""\
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModel

repo = "${repo_id}"
image = Image.open("photo.jpg").convert("RGB")
processor = AutoImageProcessor.from_pretrained(repo, trust_remote_code=True)
model = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
inputs = processor(image, input_points=[[[image.width // 2, image.height // 2]]], return_tensors="pt")
with torch.inference_mode():
    outputs = model(**inputs)
print(outputs.pred_masks.shape, outputs.iou_scores)"""),
    "sr": Template("""\
from transformers import pipeline

upscaler = pipeline("image-super-resolution", model="${repo_id}", trust_remote_code=True)
print(upscaler("photo.jpg").size)"""),
}

CITATION_EFFICIENTVIT = """\
@inproceedings{cai2023efficientvit,
  title={EfficientViT: Lightweight Multi-Scale Attention for High-Resolution Dense Prediction},
  author={Cai, Han and Li, Junyan and Hu, Muyan and Gan, Chuang and Han, Song},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision},
  pages={17302--17313},
  year={2023}
}"""

CITATION_SAM = """\
@article{zhang2024efficientvit,
  title={EfficientViT-SAM: Accelerated Segment Anything Model Without Performance Loss},
  author={Zhang, Zhuoyang and Cai, Han and Han, Song},
  journal={arXiv preprint arXiv:2402.05008},
  year={2024}
}"""
