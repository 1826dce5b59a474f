"""The fingerprint of the machine and software a run was made on, stored with every result."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_threads() -> int:
    """CPU threads this process may use (the affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cuda_device_names() -> list[str]:
    if not _cuda_available():
        return []
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def describe_device(device: str) -> tuple[str, int]:
    """(name, number of devices) for a torch device string: "cpu", "cuda", "cuda:1"."""
    if device.startswith("cuda") and _cuda_available():
        import torch

        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        return torch.cuda.get_device_name(index), 1
    return f"CPU: {cpu_model()} ({cpu_threads()} threads)", 1


def nvidia_driver_version() -> str | None:
    """The kernel driver's version: /proc/driver/nvidia/version, else nvidia-smi; None without one."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d+(?:\.\d+)+)", text)
        if match:
            return match.group(1)
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        return out[0] if out else None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _nerbench_commit() -> str | None:
    """The git commit of this nerbench checkout, with "+dirty" if it has local changes."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def environment() -> dict[str, Any]:
    """Device(s), driver, CUDA, CPU, OS and the versions of the software stack, as plain JSON."""
    import nerbench

    devices = cuda_device_names()
    cuda = cudnn = None
    torch_threads = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
        if devices:
            cuda = torch.version.cuda
            cudnn_version = torch.backends.cudnn.version()
            cudnn = str(cudnn_version) if cudnn_version else None
    except ImportError:
        pass
    return {
        "devices": devices,
        "device_name": devices[0] if devices else describe_device("cpu")[0],
        "num_devices": len(devices) or 1,
        "driver": nvidia_driver_version() if devices else None,
        "cuda": cuda,
        "cudnn": cudnn,
        "cpu_model": cpu_model(),
        "cpu_threads": cpu_threads(),
        "torch_threads": torch_threads,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "bitsandbytes": _version("bitsandbytes"),
        "duckdb": _version("duckdb"),
        "nerbench": nerbench.__version__,
        "nerbench_commit": _nerbench_commit(),
    }
