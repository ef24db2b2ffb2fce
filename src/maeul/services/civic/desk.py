"""Builds the grounded-answer desk a city configured: its documents, index cache, generator."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any


def sample_docs() -> Path:
    """The sample documents shipped with maeul (a fictional city, 예시시)."""
    return Path(str(resources.files("maeul.services.civic").joinpath("data/docs")))


def generator_from(url: str | None, model: str | None, key_env: str | None,
                   gguf: Path | None) -> Any:
    """The configured answer generator, or None for extractive answers."""
    from .generator import LlamaCpp, OpenAICompatible

    if url:
        if not model:
            raise ValueError("a generator URL needs a model name (civic_generator_model)")
        key = os.environ.get(key_env) if key_env else None
        if key_env and not key:
            raise ValueError(f"environment variable {key_env} (the generator's key) is unset")
        return OpenAICompatible(url, model, api_key=key)
    if gguf:
        return LlamaCpp(gguf)
    return None


def build_desk(settings: Any, docs: Path | None = None) -> Any:
    """The desk over ``docs`` (default: the city's folder, else the samples)."""
    from .answer import Desk
    from .docindex import DocIndex

    folder = docs or settings.civic_docs_dir or sample_docs()
    if not Path(folder).is_dir():
        raise ValueError(f"civic_docs_dir {folder} is not a folder")
    index = DocIndex.load_or_build(Path(folder), Path(settings.civic_cache_dir) / "index")
    gen = generator_from(settings.civic_generator_url, settings.civic_generator_model,
                         settings.civic_generator_key_env, settings.civic_gguf_path)
    return Desk(index, generator=gen)
