"""The timing protocol's rules: its numbers, the reference hardware and the price of a device-hour.

Plain data and rules, no torch: the submissions, the store readers and the site judge timing by
them without loading a model. nerbench.timing is the runner that measures under them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from nerbench.errors import NerbenchError

ENCODER, LLM = "encoder", "llm"
BF16, NF4, FP32 = "bf16", "nf4", "fp32"


@dataclass(frozen=True)
class TimingProtocol:
    """Every number of the protocol. Stored with each run (`to_dict`)."""

    warmup_batches: int = 3
    repeats: int = 3
    encoder_batch_size: int = 64
    llm_batch_size: int = 8
    # On CUDA: encoders and LoRA adapters merged into their base run in bf16; QLoRA models served as
    # trained run 4-bit nf4, on any device. Otherwise CPUs run fp32 (bf16 matmuls are slow on most CPUs).
    encoder_precision: str = BF16
    merged_lora_precision: str = BF16
    qlora_precision: str = NF4
    cpu_precision: str = FP32
    # The paper's hardware: one H100 80GB (SXM, HBM3), as torch names it.
    reference_device_names: tuple[str, ...] = ("NVIDIA H100 80GB HBM3",)
    reference_num_devices: int = 1

    def batch_size(self, family: str) -> int:
        if family == ENCODER:
            return self.encoder_batch_size
        if family == LLM:
            return self.llm_batch_size
        raise NerbenchError(f"family: unknown model family {family!r} (expected {ENCODER!r} or {LLM!r})")

    def precision(self, family: str, *, quantized: bool = False, device: str = "cuda") -> str:
        """The precision a model is timed in; `quantized` marks a QLoRA model kept in 4 bits."""
        self.batch_size(family)  # validates the family
        if family == LLM and quantized:  # a QLoRA model served as trained stays 4-bit on any device
            return self.qlora_precision
        if not device.startswith("cuda"):
            return self.cpu_precision
        return self.encoder_precision if family == ENCODER else self.merged_lora_precision

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reference_device_names"] = list(self.reference_device_names)
        return out


PROTOCOL = TimingProtocol()

# The batch size of an LLM served "as deployed" (adapter merged into a 16-bit base): a throughput
# batch, as a server would fill it, against the paper's 8. Kept out of TimingProtocol so that the
# records of runs stored before it existed keep their ids; every run stores its own batch size.
DEPLOYED_LLM_BATCH_SIZE = 32


def is_reference_hardware(device_name: str, num_devices: int, protocol: TimingProtocol | None = None) -> bool:
    """True only for the protocol's reference device (one H100 80GB HBM3), in the protocol's number."""
    protocol = protocol or PROTOCOL
    names = {n.casefold() for n in protocol.reference_device_names}
    return device_name.strip().casefold() in names and num_devices == protocol.reference_num_devices


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    return json.loads(resources.files("nerbench").joinpath("prices.json").read_text(encoding="utf-8"))


def price_for(device_name: str, price_per_hour: float | None = None) -> Price | None:
    """The price of one device-hour: the override if given, else the table's entry for the device."""
    if price_per_hour is not None:
        if not price_per_hour > 0:
            raise NerbenchError(f"--price-per-hour: must be a positive number of USD, got {price_per_hour}")
        return Price(float(price_per_hour), "given on the command line (--price-per-hour)")
    for entry in price_table()["devices"]:
        if any(re.fullmatch(p, device_name.strip(), re.IGNORECASE) for p in entry["match"]):
            source = (
                f"{entry['provider']} on-demand {entry['label']}, {entry['source']} "
                f"(price of {entry['price_date']}, read {entry['read_on']})"
            )
            return Price(float(entry["usd_per_hour"]), source)
    return None
