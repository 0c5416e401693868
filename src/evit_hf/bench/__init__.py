"""Benchmarks (`evit-hf bench ...`, `evit-hf demo`'s zoo), by role.

- The timing core, `core`: timing, the one MAC counter, parameter / memory counts, the measured setting,
  tables. Everything that reports a latency or GMACs measures with it.
- The studies, one module each: `zoo` (backbone presets), `segmentation` (vs SegFormer), `sam` (vs SAM
  ViT-B), `super_resolution` (vs Swin2SR), `inference` (`bench cpu`: the optimised graph vs the original
  implementation), `settings` (threads / OpenMP / allocator), `backends` (every inference back end), `mixers`
  and `mixer_training` (the token-mixer studies).

The peers and the original implementation they are measured against live in `evit_hf.reference`.
"""
