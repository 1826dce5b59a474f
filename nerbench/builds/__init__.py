"""How each registered file is made from its pinned public sources.

A split of nerbench/datasets.json names its `build`: a function that takes the split's sources and a
`Reader` (which returns the bytes of one pinned source file) and returns the exact bytes of the
`.conll` file. `nerbench.datasets.fetch` checks those bytes against the registry's sha256 before it
places them; a builder only converts, it never writes a file.

The builds (each module imported only when its build is asked for):

- "reserialise" (`reserialise.build`): the source already holds the sentences; re-serialised.
- "jnlpba_genia_train" (`jnlpba.build_train`): abstracts 1-1,800 of the JNLPBA 2004 training package.
- "chemprot_span_json" (`chemprot.build_span_json`): ChemProt span JSON to BIO per sentence.
- "chemprot_rebuild_train" (`chemprot_train.build_train`): the ChemProt train split rebuilt from
  the original corpus; its bytes may differ from the registry's where an exact rebuild is not
  possible (`APPROXIMATE`).

Document sidecars (`.docs`) are built by `documents.build_documents`.

This package sits below `nerbench.datasets` (which re-exports `Source`): it imports only the
lowest layer (conll, errors), never the datasets registry, models or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from nerbench.errors import NerbenchError


@dataclass(frozen=True)
class Source:
    """One public file at a pinned commit of a GitHub repository."""

    repository: str
    commit: str
    path: str
    note: str = ""

    def url(self, base: str) -> str:
        """Its address under `base` laid out like raw.githubusercontent.com (the path URL-quoted)."""
        return f"{base.rstrip('/')}/{quote(f'{self.repository}/{self.commit}/{self.path}')}"

    @property
    def label(self) -> str:
        """A short name for messages: `owner/repo@commit12:path`."""
        return f"{self.repository}@{self.commit[:12]}:{self.path}"


Reader = Callable[[Source], bytes]
"""Returns the bytes of one pinned source file (raises NerbenchError naming it when it cannot)."""

Builder = Callable[[Sequence[Source], Reader], bytes]
"""Returns the exact bytes of a split's `.conll` file from its sources."""

DocumentsBuilder = Callable[[str, str, bytes, Sequence[Source], Reader], bytes]
"""(dataset, split, the .conll bytes, the sidecar's sources, reader) -> the `.docs` bytes."""

# build name -> (module under nerbench.builds, function name)
_BUILDS: dict[str, tuple[str, str]] = {
    "reserialise": ("reserialise", "build"),
    "jnlpba_genia_train": ("jnlpba", "build_train"),
    "chemprot_span_json": ("chemprot", "build_span_json"),
    "chemprot_rebuild_train": ("chemprot_train", "build_train"),
}
BUILDS: tuple[str, ...] = tuple(_BUILDS)

# Builds whose output may differ from the registered bytes (an exact rebuild is not always
# possible); fetch offers such a build only on request (`allow_nearest`), never as the registered file.
APPROXIMATE: frozenset[str] = frozenset({"chemprot_rebuild_train"})


def builder(name: str) -> Builder:
    """The function of build `name` (its module is imported now)."""
    if name not in _BUILDS:
        raise NerbenchError(f"unknown build {name!r}; known: {', '.join(BUILDS)}")
    module, function = _BUILDS[name]
    return _function(module, function, f"build {name!r}")


def documents_builder() -> DocumentsBuilder:
    """`documents.build_documents`, which makes the `.docs` sidecar of a split."""
    return _function("documents", "build_documents", "the document sidecar build")


def _function(module: str, function: str, what: str) -> Callable:
    # Imported by name: a module is loaded only when its build runs, and a nerbench without one of
    # them still fetches everything else (that build is then reported as unavailable).
    qualified = f"{__name__}.{module}"
    try:
        loaded = importlib.import_module(qualified)
    except ModuleNotFoundError as err:
        if err.name != qualified:
            raise
        raise NerbenchError(f"{what} is not available in this nerbench ({qualified} is missing)") from None
    found = getattr(loaded, function, None)
    if not callable(found):
        raise NerbenchError(f"{what} is not available in this nerbench ({qualified} has no {function}())")
    return found
