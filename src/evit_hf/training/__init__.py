"""Training with Accelerate on streamed `datasets`: the shared trainer core and one module per task.

`arguments` (recipes + command-line overrides; a resume restores the run's own), `data` (streams and
per-process shares), `transforms` (augmentation around the models' image processors), `tasks` (what the image
tasks share: the processor saved with the model), `metrics` (mIoU, accuracy, PSNR, mask IoU, embedding MSE),
`optim` (AdamW groups, warm-up cosine), `trainer` (the loop, evaluation, checkpoints), `checkpoints` (a run
folder on disk: saved arguments, atomic checkpoints, `latest`), `interrupts` (SIGINT / SIGTERM: stop after the
step, save, print the resume command), and the tasks: `segmentation`, `classification`,
`super_resolution` and `sam` (EfficientViT-SAM distillation and prompted fine-tuning; prompts and losses in
`sam_objectives`). The scripts in the repository's `training/` folder are thin entry points for
`accelerate launch`.
"""
