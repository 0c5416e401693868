"""Benchmarks: timing, MAC counting and report tables (`evit-hf bench ...`, `evit-hf demo`)."""
