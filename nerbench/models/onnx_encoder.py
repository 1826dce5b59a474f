"""An encoder token classifier served through ONNX Runtime: the "onnx" serving condition.

The exporter is torch's own `torch.onnx.export` (its dynamo-based exporter, through onnxscript),
not Hugging Face optimum. It needs no package that pins transformers: optimum's ONNX export lives
in a separate package (optimum-onnx) released against particular transformers versions, while
nerbench follows transformers 5 and pins torch; torch's exporter traces the very module nerbench
loads (`torch.export`, dynamic batch and sequence axes), so whatever architecture
`AutoModelForTokenClassification` builds is exported without a per-architecture ONNX config. The
graph is exported once per checkpoint in fp32 (eager attention, then fused for ONNX Runtime by
onnxscript's rewriter) and cached beside it (`<checkpoint>/onnx/model.onnx`,
or in the user cache where the checkpoint folder is read-only) with a manifest of the source
weights' sha256 and the exporter's versions: changed weights, a changed exporter or a damaged file
export anew.

Before it is used the exported graph is checked against PyTorch fp32 on the same sentences (the
dataset's dev split under `nerbench eval`): any word tagged differently refuses the serving
condition. Batching, windows and word alignment are `EncoderPredictor`'s; only the forward pass
differs. CPU: ONNX Runtime's CPU provider with as many intra-op threads as torch uses, so both
runtimes get the same cores. CUDA: the CUDA provider (the `onnxruntime-gpu` build), fp32 without
TF32, as torch's fp32 matmuls run by default.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nerbench.errors import NerbenchError
from nerbench.models.encoder import ENCODER_BATCH_SIZE, EncoderPredictor
from nerbench.models.predictor import predict_all
from nerbench.models.registry import ResolvedModel, resolve_model
from nerbench.protocol import FP32

MANIFEST_VERSION = 2  # 2: eager attention (EXPORT_ATTENTION), fused for ONNX Runtime; older exports are made anew
ONNX_DIR = "onnx"
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
OPSET = 18
EXPORTER_PACKAGES = ("torch", "transformers", "onnx", "onnxscript")
INPUTS = ("input_ids", "attention_mask")
EXPORT_ATTENTION = "eager"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def exporter_versions() -> dict[str, str | None]:
    return {package: _version(package) for package in EXPORTER_PACKAGES} | {"opset": str(OPSET)}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(folder: Path) -> str:
    """One digest over the folder's safetensors files (names and contents, in name order)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise NerbenchError(f"{folder}: no safetensors weights to export to ONNX")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def cache_dir(folder: Path, weights_digest: str) -> Path:
    """`<checkpoint>/onnx`, or the user cache where the checkpoint folder cannot be written."""
    beside = folder / ONNX_DIR
    if os.access(beside if beside.is_dir() else folder, os.W_OK):
        return beside
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "nerbench" / "onnx" / weights_digest[:32]


@dataclass(frozen=True)
class Export:
    path: Path
    manifest: dict[str, Any]
    exported_now: bool


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def cached_export(folder: Path, weights_digest: str) -> Export | None:
    """The export in `folder` when it is of these weights by this exporter and intact."""
    manifest = read_manifest(folder)
    path = folder / MODEL_FILE
    if (
        manifest is None
        or manifest.get("manifest_version") != MANIFEST_VERSION
        or manifest.get("weights_sha256") != weights_digest
        or manifest.get("exporter") != exporter_versions()
        or not path.is_file()
        or manifest.get("onnx_sha256") != sha256_file(path)
    ):
        return None
    return Export(path, manifest, False)


def _sample_inputs(model, pad_id: int) -> dict[str, torch.Tensor]:
    # Two rows of different lengths (batch and sequence sizes above 1, so neither axis is specialised).
    vocab = int(model.config.vocab_size)
    ids = torch.tensor(
        [[min(101, vocab - 1)] + [min(1000 + i, vocab - 1) for i in range(6)] + [min(102, vocab - 1)]] * 2
    )
    mask = torch.ones_like(ids)
    ids[1, 5:] = pad_id
    mask[1, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def export_onnx(model, out: Path, *, pad_id: int = 0) -> dict[str, int]:
    """fp32 CPU copy of `model` traced by torch.onnx.export (dynamo) into `out`, batch and sequence
    dynamic, with eager attention: ONNX Runtime runs the graph of its plain matrix products and
    softmax faster than the decomposed scaled_dot_product_attention (on 1,000 BC5CDR sentences on a
    2-core CPU, 0.89x PyTorch's speed with SDPA, about 1.03x with eager attention, the same tags);
    then fused for ONNX Runtime (`fuse_for_ort`). Returns the fusions made."""
    if next(model.parameters()).dtype != torch.float32:
        raise NerbenchError("ONNX export: the model must be fp32 (the exported graph is checked against PyTorch fp32)")
    device = next(model.parameters()).device
    attention = getattr(model.config, "_attn_implementation", None)
    model.to("cpu")  # traced on the CPU; the graph itself runs on whichever provider loads it
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    quiet = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            if attention not in (None, EXPORT_ATTENTION) and hasattr(model, "set_attn_implementation"):
                model.set_attn_implementation(EXPORT_ATTENTION)
            program = torch.onnx.export(
                model,
                (),
                kwargs=_sample_inputs(model, pad_id),
                dynamo=True,
                input_names=list(INPUTS),
                output_names=["logits"],
                opset_version=OPSET,
                dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUTS},
                external_data=False,
                verbose=False,
            )
            if program is None:
                raise NerbenchError("torch.onnx.export returned no program")
            program.save(str(out), external_data=False)
            return fuse_for_ort(out)
    except NerbenchError:
        raise
    except Exception as err:  # the exporter's own errors are many and untyped
        raise NerbenchError(f"ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0][:300]})") from err
    finally:
        model.to(device)
        if attention is not None and getattr(model.config, "_attn_implementation", None) != attention:
            model.set_attn_implementation(attention)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def fuse_for_ort(path: Path) -> dict[str, int]:
    """Rewrite the exported graph at `path` with onnxscript's fusions for ONNX Runtime (attention,
    skip layer normalisation, GELU with its bias: ONNX Runtime's fused kernels), and return how
    many of each were made. On 600 BC5CDR sentences on a 2-core CPU the fused MiniLM graph ran
    1.09x as fast as the unfused one, with the same tags. A graph the rewriter cannot handle is
    left as exported (no fusions): the check against PyTorch applies to either."""
    from onnxscript import ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    try:
        fused, counts = optimize_for_ort(ir.load(str(path)))
        partial = path.with_name(path.name + ".fused")
        ir.save(fused, str(partial))
        os.replace(partial, path)
    except Exception:  # the rewriter's errors are untyped; the unfused graph stands
        path.with_name(path.name + ".fused").unlink(missing_ok=True)
        return {}
    return {name: int(n) for name, n in sorted(counts.items()) if n}


def ensure_export(model, folder: Path, weights_digest: str, *, pad_id: int = 0) -> Export:
    """The cached export of these weights in `folder`, exported now when missing or stale."""
    found = cached_export(folder, weights_digest)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{MODEL_FILE}.{os.getpid()}.partial"
    try:
        fusions = export_onnx(model, partial, pad_id=pad_id)
        path = folder / MODEL_FILE
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "weights_sha256": weights_digest,
        "onnx_sha256": sha256_file(path),
        "exporter": exporter_versions(),
        "precision": FP32,
        "attention": EXPORT_ATTENTION,
        "fusions": fusions,
    }
    tmp = folder / f".{MANIFEST_FILE}.{os.getpid()}.partial"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_FILE)
    return Export(path, manifest, True)


def inference_session(path: Path, device: str, threads: int | None = None):
    """ONNX Runtime on `device`: the CUDA provider on "cuda[:i]" (refused where the installed
    onnxruntime has none), else the CPU provider with `threads` (default: torch's) intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise NerbenchError(
                "--serving onnx on CUDA: this onnxruntime has no CUDA execution provider (install onnxruntime-gpu "
                f"in place of onnxruntime; available: {', '.join(ort.get_available_providers())})"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        providers: list[Any] = [("CUDAExecutionProvider", {"device_id": index, "use_tf32": 0}), "CPUExecutionProvider"]
    else:
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)
    wanted = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    if session.get_providers()[0] != wanted:  # a silent fallback would time another device
        raise NerbenchError(f"ONNX Runtime did not start its {wanted} (it runs {session.get_providers()})")
    return session


class OnnxEncoderPredictor(EncoderPredictor):
    """`EncoderPredictor` with the forward pass run by an ONNX Runtime session.

    `model` is the PyTorch model the graph was exported from: its config gives the labels, its
    parameters the size that is recorded; it is not run here.
    """

    def __init__(self, model, tokenizer, labels: Sequence[str], session, *, device: str = "cpu", **kwargs):
        super().__init__(model, tokenizer, labels, **kwargs)
        self.session = session
        self.device = device
        self.precision = FP32
        self.provider = session.get_providers()[0]
        self.export: Export | None = None
        self.check_tags: tuple[list[list[str]], list[list[str]]] | None = None  # (PyTorch, ONNX) on the check split

    def _forward(self, windows) -> list[list[int]]:
        width = max(len(w.input_ids) for w in windows)
        ids = np.full((len(windows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, w in enumerate(windows):
            ids[row, : len(w.input_ids)] = w.input_ids
            mask[row, : len(w.input_ids)] = 1
        with self.model_clock.measure():
            logits = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
        return logits.argmax(-1).tolist()

    def synchronize(self) -> None:
        """Nothing to wait for: a session's run returns once its outputs are on the host."""

    @classmethod
    def load(  # type: ignore[override]
        cls,
        model_ref: str | os.PathLike | ResolvedModel,
        labels: Sequence[str],
        *,
        verify_on: Sequence[Sequence[str]],
        batch_size: int = ENCODER_BATCH_SIZE,
        device: str | None = None,
        label_policy=None,
        trust_remote_code: bool = False,
        threads: int | None = None,
    ) -> OnnxEncoderPredictor:
        """Export (or reuse the cached export of) a fine-tuned token classifier, check that ONNX
        Runtime tags `verify_on` exactly as PyTorch fp32 does, and return its predictor."""
        from nerbench.models.encoder import default_device

        ref = model_ref if isinstance(model_ref, ResolvedModel) else resolve_model(model_ref)
        device = device or default_device()
        reference = EncoderPredictor.load(
            ref,
            labels,
            batch_size=batch_size,
            device=device,
            label_policy=label_policy,
            trust_remote_code=trust_remote_code,
            dtype=torch.float32,
        )
        digest = weights_sha256(ref.path)
        export = ensure_export(reference.model, cache_dir(ref.path, digest), digest, pad_id=reference.pad_id)
        session = inference_session(export.path, device, threads)
        predictor = cls(
            reference.model,
            reference.tokenizer,
            labels,
            session,
            device=device,
            batch_size=batch_size,
            max_length=reference.max_length,
            label_policy=reference.label_policy,
            overlap=reference.overlap,
        )
        predictor.export = export
        predictor.check_tags = verify(reference, predictor, verify_on)
        predictor.serving_check = {
            "reference": "pytorch fp32",
            "candidate": f"onnx runtime fp32 ({predictor.provider})",
            "sentences": len(verify_on),
            "words": sum(len(s) for s in verify_on),
            "tags_changed": 0,
            "export": {
                "exported_now": export.exported_now,
                "weights_sha256": export.manifest["weights_sha256"],
                "onnx_sha256": export.manifest["onnx_sha256"],
                "exporter": export.manifest["exporter"],
                "fusions": export.manifest.get("fusions", {}),
            },
        }
        if device.startswith("cuda"):  # only the session runs: the reference weights leave the GPU
            predictor.model = reference.model.to("cpu")
            torch.cuda.empty_cache()
        return predictor


def differing_words(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> int:
    return sum(x != y for s, t in zip(a, b, strict=True) for x, y in zip(s, t, strict=True))


def verify(
    reference: EncoderPredictor, candidate: OnnxEncoderPredictor, sentences: Sequence[Sequence[str]]
) -> tuple[list[list[str]], list[list[str]]]:
    """Both predictors' tags of `sentences`; refused unless every word's tag is the same."""
    if not sentences:
        raise NerbenchError("--serving onnx: no sentences to check the ONNX export against PyTorch on")
    expected = predict_all(reference, sentences)
    got = predict_all(candidate, sentences)
    changed = differing_words(expected, got)
    if changed:
        words = sum(len(s) for s in sentences)
        raise NerbenchError(
            f"--serving onnx refused: the ONNX export tags {changed} of {words} words of the check split "
            f"({len(sentences)} sentences) differently from PyTorch fp32, so it is not the same model; "
            "serve it as trained"
        )
    candidate.stats = type(candidate.stats)()  # the check pass is not the timed pass
    return expected, got
