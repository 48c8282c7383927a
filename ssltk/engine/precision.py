"""Where mixed precision runs, in one place for the trainer and the evaluators' feature passes.

bf16 (or fp16) autocast pays on CUDA and is off on the CPU, where it is slower and changes numerics for nothing.
``SSLTK_CPU_AMP=1`` turns it on for the CPU as well: the tests run the CUDA-only numerics that way, since CI never
has a GPU (tests/test_gpu_paths.py states the tolerances).
"""
from __future__ import annotations

import os

import torch


def amp_enabled(amp: bool, device: torch.device) -> bool:
    return bool(amp) and (device.type == "cuda" or os.environ.get("SSLTK_CPU_AMP") == "1")


def autocast(device: torch.device, enabled: bool, dtype: torch.dtype = torch.bfloat16):
    return torch.autocast(device.type, dtype=dtype, enabled=enabled)
