"""Training with Accelerate on streamed `datasets`: the shared trainer core and one module per task.

`arguments` (recipes + command-line overrides), `data` (streams and per-process shares), `transforms`
(augmentation), `metrics` (mIoU, accuracy), `optim` (AdamW groups, warm-up cosine), `trainer` (the loop,
checkpoints, evaluation), and the tasks: `segmentation`, `classification`. The scripts in the repository's
`training/` folder are thin entry points for `accelerate launch`.
"""
