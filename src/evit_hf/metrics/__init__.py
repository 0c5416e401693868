"""Evaluation metrics computed in-package (no Hub-hosted `evaluate` scripts, so they work offline).

`super_resolution`: PSNR and SSIM on the luma (Y) channel with the SR literature's conventions.
"""

from .super_resolution import psnr_y, rgb_to_y, ssim_y

__all__ = ["psnr_y", "rgb_to_y", "ssim_y"]
