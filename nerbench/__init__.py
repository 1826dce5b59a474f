"""nerbench: a living benchmark of encoders and LLMs for biomedical NER."""

__version__ = "0.1.0"
