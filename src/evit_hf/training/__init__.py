"""Training with Accelerate on streamed `datasets`: the shared trainer core and one module per task.

`arguments` (recipes + command-line overrides), `data` (streams and per-process shares), `transforms`
(augmentation around the models' image processors), `tasks` (what the image tasks share: the processor saved
with the model), `metrics` (mIoU, accuracy, PSNR, mask IoU, embedding MSE), `optim` (AdamW groups, warm-up
cosine), `trainer` (the loop, checkpoints, evaluation), and the tasks: `segmentation`, `classification`,
`super_resolution` and `sam` (EfficientViT-SAM distillation and prompted fine-tuning; prompts and losses in
`sam_objectives`). The scripts in the repository's `training/` folder are thin entry points for
`accelerate launch`.
"""
