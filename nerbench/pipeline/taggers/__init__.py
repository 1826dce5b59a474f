"""The ways of tagging, and the catalogue that picks one for a model and a head.

Adding a way of tagging: one module with a `Tagger` subclass, and one entry here.
"""

from __future__ import annotations

from nerbench.errors import NerbenchError
from nerbench.pipeline.taggers.base import Request, Tagger
from nerbench.pipeline.taggers.decoder_generative import DecoderGenerative
from nerbench.pipeline.taggers.decoder_token import DecoderToken
from nerbench.pipeline.taggers.encoder_token import EncoderToken

TAGGERS: dict[tuple[str, str], type[Tagger]] = {
    ("encoder", "token"): EncoderToken,
    ("llm", "token"): DecoderToken,
    ("llm", "generative"): DecoderGenerative,
}

__all__ = ["TAGGERS", "Request", "Tagger", "family_of", "select_tagger"]


def family_of(ref) -> str:
    """ "llm" for registry LLMs, adapters, and checkpoints whose architecture is a causal LM."""
    if ref.family is not None:
        return ref.family
    from nerbench.models.registry import read_config

    architectures = read_config(ref.path / "config.json").get("architectures") or []
    return "llm" if any(str(a).endswith("ForCausalLM") for a in architectures) else "encoder"


def _default_head(ref, family: str) -> str:
    if family != "llm":
        return "token"
    if ref.source == "adapter":
        from nerbench.models.llm import adapter_head

        return adapter_head(ref.path)
    return ref.meta.recipe.head if ref.meta is not None else "token"


def select_tagger(ref, request: Request, *, fine_tune: bool) -> Tagger:
    family = family_of(ref)
    if family == "encoder" and (request.head not in (None, "token") or request.quantize is not None):
        raise NerbenchError(f"--head / --quantize: apply to LLMs only; {ref.name!r} is an encoder")
    head = request.head or _default_head(ref, family)
    if (family, head) not in TAGGERS:
        known = sorted({h for f, h in TAGGERS if f == family})
        raise NerbenchError(f"--head: must be {' or '.join(repr(h) for h in known)}, not {head!r}")
    return TAGGERS[(family, head)](ref, request, fine_tune=fine_tune)
