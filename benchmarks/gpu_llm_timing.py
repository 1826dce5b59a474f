"""Timing the protocol on the Llama-3.1-8B architecture: bf16 and 4-bit nf4, token and generative,
and the "as-deployed" serving condition (a LoRA adapter merged into the 16-bit base).

For a machine with a GPU (CI never runs it). The weights are random, drawn from the architecture's
config: the figures are speed, memory and cost only, never F1. What the protocol times is the same
as `nerbench eval`: the test sentences in length-sorted batches of 8 (the LLM batch size), word
tokens in to tags out, warm-up batches, timed passes, median.

    python benchmarks/gpu_llm_timing.py --dataset bc5cdr --sentences 300 --json gpu_llm_timing.json
    python benchmarks/gpu_llm_timing.py --device cpu  # the same code on CPU with a tiny config (--smoke)

Modes are PRECISION:HEAD; "deployed:HEAD" saves the random base and a random LoRA adapter to a
scratch folder and loads them the way `nerbench eval --serving as-deployed` does
(`load_llm_predictor(..., serving="as-deployed")`: merged into a bf16 base on CUDA, fp32 on CPU, at
its throughput batch size). Generative modes time the first --generative-sentences sentences (64),
so that this script and gpu_encoder_timing.py fit in 8 minutes on one H100 (an estimate: not yet
run on one). The table gives sentences/s, peak memory and the share of the H100 SXM's dense bf16
peak (989.5 TFLOP/s, NVIDIA's datasheet) reached, FLOPs estimated as 2 x parameters x tokens
processed (prompt sub-tokens, plus generated tokens in generative modes).

Two stand-ins, stated in the output:
- tokenizer: Llama-3's own when --tokenizer names its folder; otherwise SmolLM2's (byte-level BPE
  as well, smaller vocabulary, so somewhat more tokens per word than Llama-3's);
- answer length in generative mode: a random model never writes its end-of-sequence token, so each
  sentence's token budget is set to its gold answer's length plus the end-of-sequence token — the
  length a model that learned the format writes. Decoding is greedy, as in nerbench eval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from nerbench.datasets import get_dataset, load_split  # noqa: E402
from nerbench.models.generative import GenerativePredictor, target_text  # noqa: E402
from nerbench.models.llm import LLMTokenPredictor, load_llm_predictor, load_tokenizer  # noqa: E402
from nerbench.protocol import PROTOCOL, TimingProtocol  # noqa: E402
from nerbench.timing import run_timed  # noqa: E402

from _gpu_common import peak_share  # noqa: E402

# meta-llama/Llama-3.1-8B(-Instruct) config.json values that shape compute.
LLAMA_31_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    rope_scaling={
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    tie_word_embeddings=False,
    vocab_size=128256,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


class GoldLengthGenerative(GenerativePredictor):
    """Greedy generation whose budget per sentence is its gold answer's length + EOS (see above)."""

    def __init__(self, *args, gold: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._gold = gold

    def answer_budget(self, tokens):
        key = tuple(tokens)
        if key not in self._budgets:
            answer = target_text(tokens, self._gold[key]) if tokens else ""
            self._budgets[key] = len(self.tokenizer(answer, add_special_tokens=False)["input_ids"]) + 1
        return self._budgets[key]


def build(head: str, precision: str, config_values: dict, vocab: int, labels, device: str, pad_id: int):
    """A random-weight Llama of the given shape, in bf16 or with nf4 4-bit linear layers."""
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification

    values = config_values | {"vocab_size": max(vocab, config_values.get("vocab_size", 0)), "pad_token_id": pad_id}
    if head == "token":
        values |= {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    config = LlamaConfig(**values)
    cls = LlamaForTokenClassification if head == "token" else LlamaForCausalLM
    torch.manual_seed(0)
    with torch.device("meta"):
        model = cls(config)
    # Materialise on the device and draw small weights there (a CPU init of 8B weights takes minutes).
    model.to_empty(device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.02)
            elif "norm" in name:
                p.fill_(1.0)
            else:
                p.zero_()
    model.to(torch.bfloat16)
    # Rotary frequencies are computed, not learnt: rebuilt in fp32 (to_empty left them undefined).
    model.model.rotary_emb = type(model.model.rotary_emb)(config).to(device)
    if precision == "nf4":
        quantize_linear_layers(model, device)
    return model.eval()


def quantize_linear_layers(model, device: str) -> None:
    """Replace every decoder-layer nn.Linear by a bitsandbytes nf4 layer (double quantization,
    bf16 compute): the recipe's QLoRA base. The head and embeddings stay bf16, as in nerbench."""
    import bitsandbytes as bnb

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, child in list(parent.named_children()):
                if isinstance(child, torch.nn.Linear):
                    q = bnb.nn.Linear4bit(
                        child.in_features,
                        child.out_features,
                        bias=child.bias is not None,
                        compute_dtype=torch.bfloat16,
                        compress_statistics=True,
                        quant_type="nf4",
                        device="cpu" if device == "cpu" else None,
                    )
                    q.weight = bnb.nn.Params4bit(
                        child.weight.data.to("cpu"), requires_grad=False, compress_statistics=True, quant_type="nf4"
                    ).to(device)
                    setattr(parent, name, q)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def deployed_model(head, config_values, tokenizer, labels, entity_types, device, folder: Path):
    """A random bf16 base and a random LoRA adapter, saved and loaded as deployed (merged)."""
    from peft import LoraConfig, get_peft_model

    base = build(head, "bf16", config_values, len(tokenizer), labels, device, tokenizer.pad_token_id)
    base.save_pretrained(folder / "base")
    tokenizer.save_pretrained(folder / "base")
    task = "TOKEN_CLS" if head == "token" else "CAUSAL_LM"
    lora = LoraConfig(task_type=task, r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS)
    peft_model = get_peft_model(base, lora)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:  # drawn, not zero, so that merging changes the weights
            torch.nn.init.normal_(p, 0.0, 0.02)
    peft_model.save_pretrained(folder / "adapter")
    config_path = folder / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config_path.write_text(json.dumps(config | {"base_model_name_or_path": str(folder / "base")}), encoding="utf-8")
    del base, peft_model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return load_llm_predictor(folder / "adapter", labels, entity_types, head=head, device=device, serving="as-deployed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="bc5cdr")
    parser.add_argument("--sentences", type=int, default=300, help="first N test sentences")
    parser.add_argument("--tokenizer", type=Path, default=None, help="Llama-3 tokenizer folder (default: SmolLM2's)")
    parser.add_argument("--modes", default="bf16:token,nf4:token,deployed:token,bf16:generative,nf4:generative")
    parser.add_argument("--generative-sentences", type=int, default=64, help="first N of those, generative modes")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: tiny config, checks the code")
    parser.add_argument("--price-per-hour", type=float, default=None)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny config, a few sentences: checks the code")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    args.smoke = args.smoke or args.device == "cpu"
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --smoke to check the code on a CPU")
    info = get_dataset(args.dataset)
    test = load_split(args.dataset, "test").sentences
    # The smoke run checks the code, not the speed: a few of the shortest sentences.
    test = sorted(test, key=lambda s: len(s.tokens))[:3] if args.smoke else test[: args.sentences]
    tokens = [s.tokens for s in test]
    gold = {tuple(s.tokens): list(s.tags) for s in test}
    if args.tokenizer is not None:
        tokenizer, tokenizer_name = load_tokenizer(args.tokenizer), str(args.tokenizer)
    else:
        from nerbench.models.registry import resolve_model

        tokenizer, tokenizer_name = load_tokenizer(resolve_model("smollm2-135m").path), "SmolLM2 (stand-in)"
    shape = TINY if args.smoke else LLAMA_31_8B
    protocol = TimingProtocol(warmup_batches=1, repeats=1) if args.smoke else PROTOCOL
    rows = []
    scratch = tempfile.TemporaryDirectory(prefix="nerbench-gpu-llm-")
    for mode in args.modes.split(","):
        precision, head = mode.split(":")
        serving = "as-deployed" if precision == "deployed" else "as-trained"
        sentences = tokens if head == "token" else tokens[: args.generative_sentences]
        started = time.perf_counter()
        if serving == "as-deployed":
            loaded = deployed_model(
                head,
                shape,
                tokenizer,
                info.labels,
                info.entity_types,
                device,
                Path(scratch.name) / mode.replace(":", "-"),
            )
            model, precision = loaded.model, loaded.precision
            if head == "token":
                predictor = loaded
            else:  # the merged model under the gold-length budget (see above), at the deployed batch size
                predictor = GoldLengthGenerative(
                    model, tokenizer, info.labels, info.entity_types, batch_size=loaded.batch_size, gold=gold
                )
                predictor.precision = precision
        else:
            model = build(head, precision, shape, len(tokenizer), info.labels, device, tokenizer.pad_token_id)
        build_seconds = time.perf_counter() - started
        if serving == "as-deployed":
            pass
        elif head == "token":
            predictor = LLMTokenPredictor(model, tokenizer, info.labels, precision=precision)
        else:
            predictor = GoldLengthGenerative(
                model, tokenizer, info.labels, info.entity_types, batch_size=PROTOCOL.batch_size("llm"), gold=gold
            )
            predictor.precision = precision
        _, timing = run_timed(predictor, sentences, protocol, price_per_hour=args.price_per_hour)
        parameters = sum(p.numel() for p in model.parameters())
        if head == "token":
            processed = sum(len(w.input_ids) for part in predictor.prepare(sentences) for w in part.windows)
        else:
            stats = predictor.generation_stats()
            per_sentence = (stats["prompt_tokens"] + stats["generated_tokens"]) / max(stats["sentences"], 1)
            processed = round(per_sentence * len(sentences))
        row = {
            "precision": precision,
            "head": head,
            "serving": serving,
            "batch_size": predictor.batch_size,
            "tokens_processed": processed,
            "bf16_peak_share": peak_share(parameters, processed, timing.wall_seconds),
            "sentences": len(sentences),
            "parameters": parameters,
            "linear_4bit_layers": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
            "build_seconds": build_seconds,
            **{k: v for k, v in timing.to_dict().items() if k not in ("protocol", "generation")},
        }
        if head == "generative":
            stats = predictor.generation_stats()
            row["generated_tokens"] = stats["generated_tokens"]
            row["generated_tokens_per_sentence_mean"] = stats["generated_tokens"] / max(stats["sentences"], 1)
        rows.append(row)
        print(
            json.dumps(
                {
                    k: row[k]
                    for k in (
                        "precision",
                        "head",
                        "serving",
                        "sentences_per_second",
                        "wall_seconds",
                        "peak_memory_bytes",
                        "cost_per_1k_sentences_usd",
                    )
                }
            ),
            flush=True,
        )
        del model, predictor
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

    print()
    print(
        f"Llama-3.1-8B architecture{' (TINY smoke config)' if args.smoke else ''}, random weights (timing only), "
        f"{len(tokens)} {args.dataset} test sentences ({args.generative_sentences} in generative modes), tokenizer "
        f"{tokenizer_name}, device {rows[0]['device_name']}; bf16 peak: H100 SXM dense 989.5 TFLOP/s (NVIDIA "
        "datasheet), FLOPs = 2 x parameters x tokens processed"
    )
    print(
        f"{'precision':9} {'head':10} {'serving':11} {'batch':>5} {'sent/s':>9} {'wall s':>8} {'p95 batch s':>11} "
        f"{'peak GiB':>9} {'bf16 peak':>9} {'$/1k sent':>10} {'gen tok/sent':>12}"
    )
    for r in rows:
        cost = r["cost_per_1k_sentences_usd"]
        print(
            f"{r['precision']:9} {r['head']:10} {r['serving']:11} {r['batch_size']:>5} "
            f"{r['sentences_per_second']:9.2f} {r['wall_seconds']:8.2f} "
            f"{r['batch_latency_p95_s']:11.3f} {(r['peak_memory_bytes'] or 0) / 2**30:9.2f} "
            f"{100 * r['bf16_peak_share']:8.2f}% {'unknown' if cost is None else f'{cost:.4f}':>10} "
            f"{r.get('generated_tokens_per_sentence_mean', float('nan')):12.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "smoke": args.smoke,
                    "dataset": args.dataset,
                    "tokenizer": tokenizer_name,
                    "architecture": shape,
                    "rows": rows,
                },
                indent=2,
                default=str,
            )
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
