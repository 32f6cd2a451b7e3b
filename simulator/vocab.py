"""Fixed vocabularies of the simulated Hub and registries, with their shares.

Shares are rough: licences follow paper B (about 65 % of models and 72 % of datasets have
none), libraries and pipelines the usual Hub mix (transformers first).
"""

from __future__ import annotations

LIBRARIES = (
    "transformers", "diffusers", "sentence-transformers", "peft", "timm", "gguf",
    "keras", "pytorch", "stable-baselines3", "ml-agents", "mlx", "onnx", "adapter-transformers",
)  # fmt: skip
LIBRARY_WEIGHTS = (0.52, 0.07, 0.06, 0.09, 0.03, 0.05, 0.02, 0.03, 0.03, 0.02, 0.02, 0.01, 0.01)
NO_LIBRARY_SHARE = 0.14

PIPELINES = (
    "text-generation", "text-classification", "fill-mask", "token-classification",
    "question-answering", "text2text-generation", "image-classification", "text-to-image",
    "automatic-speech-recognition", "sentence-similarity", "feature-extraction", "translation",
    "summarization", "reinforcement-learning", "image-text-to-text", "object-detection",
)  # fmt: skip
PIPELINE_WEIGHTS = (
    0.26, 0.14, 0.05, 0.05, 0.03, 0.05, 0.06, 0.07, 0.05, 0.04, 0.04, 0.03, 0.02, 0.05, 0.04, 0.02,
)  # fmt: skip
NO_PIPELINE_SHARE = 0.18

LICENSES = (
    "apache-2.0", "mit", "openrail", "cc-by-4.0", "llama2", "other", "cc-by-nc-4.0",
    "gpl-3.0", "creativeml-openrail-m", "cc-by-sa-4.0", "bsd-3-clause", "llama3",
)  # fmt: skip
LICENSE_WEIGHTS = (0.38, 0.2, 0.07, 0.06, 0.04, 0.07, 0.05, 0.02, 0.04, 0.03, 0.02, 0.02)
# before the card filter: only repos with a card show a licence (~72 % have one)
NO_LICENSE_SHARE = {"model": 0.51, "dataset": 0.61, "space": 0.5}

RELATIONS = ("finetune", "adapter", "quantized", "merge")
RELATION_WEIGHTS = (0.5, 0.25, 0.18, 0.07)
RELATION_LIBRARY = {"adapter": "peft", "quantized": "gguf"}  # when the child switches library

SDKS = ("gradio", "streamlit", "docker", "static")
SDK_WEIGHTS = (0.68, 0.16, 0.11, 0.05)

LANGUAGES = ("en", "zh", "fr", "de", "es", "ja", "ru", "ko", "ar", "hi", "pt", "it")
TASK_CATEGORIES = (
    "text-classification", "question-answering", "text-generation", "translation",
    "summarization", "image-classification", "automatic-speech-recognition", "tabular-classification",
)  # fmt: skip
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M")

FAMILIES = (
    "bert", "roberta", "llama", "qwen", "mistral", "t5", "gpt2", "whisper", "vit", "clip",
    "phi", "gemma", "falcon", "bloom", "deberta", "electra", "distilbert", "stable-diffusion",
    "wav2vec2", "bart", "opt", "pythia", "mamba", "yolo", "resnet", "sdxl", "flux", "smol",
)  # fmt: skip
SIZES = ("small", "base", "large", "tiny", "7b", "13b", "1.5b", "3b", "xl", "mini", "medium", "70b")
SUFFIXES = (
    "finetuned", "squad", "imdb", "sst2", "chat", "instruct", "lora", "gguf", "awq", "ner",
    "sentiment", "dpo", "sft", "merged", "v2", "custom", "demo", "test", "mnli", "cased",
)  # fmt: skip
DATASET_WORDS = (
    "corpus", "reviews", "qa", "instructions", "images", "speech", "dialogues", "wiki",
    "news", "code", "math", "medical", "legal", "tweets", "benchmark", "pairs", "captions",
)  # fmt: skip
SPACE_WORDS = (
    "demo", "chat", "playground", "leaderboard", "arena", "app", "viewer", "explorer",
    "generator", "translator", "detector", "studio",
)  # fmt: skip

SYLLABLES = (
    "ka", "ra", "to", "mi", "an", "el", "so", "vi", "lu", "no", "de", "ri", "sa", "ta", "ko",
    "ne", "po", "li", "ma", "zu", "be", "ga", "fi", "jo", "ha", "ye", "qu", "xi", "wo", "ce",
    "da", "mo",
)  # fmt: skip
ORG_SUFFIXES = ("-ai", "-labs", "-research", "-nlp", "-ml", "-group", "ai", "-hub", "-tech")

BOTS = ("librarian-bot", "SFconvertbot", "hf-bot", "system")

CARD_SECTIONS = (
    "Model description", "Intended uses & limitations", "How to use", "Training data",
    "Training procedure", "Evaluation results", "Limitations and bias", "Environmental impact",
    "Citation",
)  # fmt: skip
DATASET_SECTIONS = (
    "Dataset Summary", "Supported Tasks", "Languages", "Dataset Structure",
    "Data Collection", "Considerations", "Licensing Information", "Citation Information",
)  # fmt: skip

COMMIT_TITLES = (  # the first two are bots' commits
    "Adding `safetensors` variant of this model", "Librarian Bot: Add base_model information to model",
    "Update README.md", "Upload folder using huggingface_hub", "Upload model", "Add files",
    "Update config.json", "Upload tokenizer", "Training in progress, step 500", "Fix typo", "Upload dataset", "Update app.py", "Update requirements.txt",
)  # fmt: skip
DISCUSSION_TITLES = (
    "How to use this model?", "Add safetensors", "Error when loading", "License question",
    "Update README.md", "Great work!", "Training data?", "Request: quantized version",
    "Performance on benchmark", "Adding Evaluation Results", "Fix tokenizer config",
)  # fmt: skip

NPM_WORDS = (
    "react", "lodash", "express", "chalk", "debug", "axios", "vue", "webpack", "babel", "eslint",
    "uuid", "moment", "commander", "yargs", "async", "request", "glob", "semver", "tslib", "rxjs",
)  # fmt: skip
PYPI_WORDS = (
    "boto", "numpy", "requests", "urllib", "six", "setup", "pandas", "click", "attrs", "pytz",
    "certifi", "idna", "charset", "yaml", "jinja", "flask", "django", "torch", "scipy", "aio",
)  # fmt: skip
PKG_SUFFIXES = (
    "utils", "core", "cli", "plugin", "loader", "helpers", "types", "parser", "client", "tools",
    "lite", "js", "kit", "async", "compat", "extra", "fast", "mock", "config", "ext",
)  # fmt: skip
PKG_LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "ISC", "GPL-3.0", "BSD-2-Clause", "MPL-2.0")
PKG_LICENSE_WEIGHTS = (0.5, 0.2, 0.1, 0.1, 0.04, 0.04, 0.02)
