"""Options several subcommands share (device, threads, data folder) and run provenance."""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from purifier.errors import SettingsError


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda[:N]")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def add_data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="folder with the data set files (default: $EBM_PURIFY_DATA, else download cache)")


def apply_runtime(args: argparse.Namespace) -> str:
    """Set threads and check the device; returns the device string."""
    if args.threads is not None and args.threads < 1:
        raise SettingsError(f"--threads must be >= 1, got {args.threads} (leave it out for torch's choice)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SettingsError(f"device {device!r} requested but CUDA is not available")
    return device


def provenance() -> dict[str, Any]:
    """How this run was made: the command, the code version, the machine."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        status = ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]
        dirty = bool(subprocess.run(status, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {
        "command": "ebm-purify " + " ".join(sys.argv[1:]),
        "git_commit": commit or None,
        "git_dirty": dirty,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
    }
