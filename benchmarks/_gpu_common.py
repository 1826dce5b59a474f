"""What the GPU timing scripts share: the bf16 peak they are measured against, the FLOP estimate, and a
memory probe for ONNX Runtime (whose CUDA allocations torch's counters never see)."""

from __future__ import annotations

from nerbench.pipeline.compute_bound import FORWARD_PER_TOKEN
from nerbench.pipeline.compute_bound import REFERENCE_PEAK_FLOPS as H100_SXM_DENSE_BF16_FLOPS


def flops_estimate(parameters: int, tokens: int) -> float:
    """FLOPs of one pass: 2 x parameters x tokens processed (a forward pass's multiply-adds)."""
    return float(FORWARD_PER_TOKEN * parameters * tokens)


def peak_share(parameters: int, tokens: int, seconds: float, peak: float = H100_SXM_DENSE_BF16_FLOPS) -> float:
    """The share of the bf16 peak FLOP/s that one pass of `tokens` in `seconds` reached."""
    return flops_estimate(parameters, tokens) / seconds / peak if seconds > 0 else 0.0


class DeviceUsedMemoryProbe:
    """Bytes in use on CUDA device 0 at the end of the timed region (all processes, CUDA contexts
    included): ONNX Runtime's CUDA arena grows to its peak and keeps it, and torch's own counters do
    not see it. An upper bound of the predictor's peak, stated as such in the report."""

    kind = "cuda_device_used_at_end"

    def start(self) -> None:
        pass

    def stop(self) -> int:
        import torch

        free, total = torch.cuda.mem_get_info(0)
        return int(total - free)
