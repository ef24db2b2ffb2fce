"""Optional answer generators for the civic desk, and the check their answers must pass.

A city may let a language model phrase answers: ``OpenAICompatible`` (any server with the
OpenAI chat-completions API: vLLM, llama.cpp's server, a hosted model) or ``LlamaCpp`` (a
local GGUF file through ``llama-cpp-python``, the ``llm`` extra). Both get the question and
the numbered passages the desk found and are told to answer only from them, citing each
sentence as [1], [2].

``check_citations(text, passages)`` decides whether a generated answer may be shown: every
sentence with content must cite at least one passage number that exists, and enough of the
sentence's content words must be in the passages it cites. The desk shows the extractive
answer instead when the check fails.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from .documents import Passage, sentence_spans
from .text import tokens

LLM_EXTRA = "the local generator needs the 'llm' extra: pip install 'maeul[llm]'"
MIN_OVERLAP = 0.5
_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")


class GeneratorError(RuntimeError):
    """The generator could not give an answer (network, HTTP status, malformed reply)."""


class Generator(Protocol):
    def generate(self, question: str, passages: Sequence[Passage], lang: str) -> str: ...


def messages(question: str, passages: Sequence[Passage], lang: str) -> list[dict[str, str]]:
    """The chat prompt: instructions, the numbered passages, the question."""
    reply_in = "Korean" if lang == "ko" else "English"
    system = (
        "You answer residents' questions for a city administration. Use ONLY the numbered "
        "passages from the city's documents. After every sentence, cite the passage(s) it "
        "comes from as [1], [2]. Quote or closely paraphrase; do not add facts, numbers or "
        "advice that the passages do not state. If the passages do not answer the question, "
        f"reply exactly NOT_COVERED. Answer in {reply_in}, in at most four sentences.")
    numbered = "\n\n".join(f"[{i}] {p.heading()}\n{p.text}"
                             for i, p in enumerate(passages, start=1))
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"Passages:\n\n{numbered}\n\nQuestion: {question}"}]


class OpenAICompatible:
    """POSTs ``{base_url}/chat/completions``; ``api_key`` goes in a Bearer header."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 30.0, max_tokens: int = 400) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"generator URL must be http(s): {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout = timeout
        self.max_tokens = max_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def generate(self, question: str, passages: Sequence[Passage], lang: str) -> str:
        import httpx

        body = {"model": self.model, "messages": messages(question, passages, lang),
                "temperature": 0, "max_tokens": self.max_tokens}
        try:
            r = httpx.post(self.url, json=body, headers=self._headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise GeneratorError(f"{self.url}: {exc.__class__.__name__}: {exc}") from exc
        if r.status_code != 200:
            raise GeneratorError(f"{self.url}: HTTP {r.status_code}")
        try:
            content = r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GeneratorError(f"{self.url}: not a chat completion ({exc})") from exc
        if not isinstance(content, str):
            raise GeneratorError(f"{self.url}: the completion has no text")
        return content

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatible({self.url!r}, {self.model!r})"


class LlamaCpp:
    """A local GGUF model; ``llama_cpp`` is imported (and the model loaded) on first use."""

    def __init__(self, model_path: Path | str, n_ctx: int = 4096, max_tokens: int = 400) -> None:
        # fail when configured, not on the first question, but import only when used
        if importlib.util.find_spec("llama_cpp") is None:
            raise RuntimeError(LLM_EXTRA)
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self._llm: Any = None

    def _model(self) -> Any:
        if self._llm is None:
            try:
                import llama_cpp
            except ImportError as exc:
                raise GeneratorError(LLM_EXTRA) from exc
            if not self.model_path.is_file():
                raise GeneratorError(f"GGUF model not found: {self.model_path}")
            self._llm = llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                                        verbose=False)
        return self._llm

    def generate(self, question: str, passages: Sequence[Passage], lang: str) -> str:
        out = self._model().create_chat_completion(
            messages=messages(question, passages, lang), temperature=0,
            max_tokens=self.max_tokens)
        try:
            return str(out["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GeneratorError(f"llama.cpp gave no completion ({exc})") from exc


def check_citations(text: str, passages: Sequence[Passage]) -> tuple[bool, list[int]]:
    """Whether every sentence of ``text`` is backed by a passage it cites.

    Returns ``(ok, numbers)``: ``numbers`` are the cited passage numbers (1-based, in order
    of first citation). A sentence fails when it has content words but no citation, cites a
    number outside ``1..len(passages)``, or fewer than ``MIN_OVERLAP`` of its content words
    appear in the passages it cites. A marker alone on a line cites the sentence before it.
    """
    passage_tokens = [set(tokens(p.search_text())) for p in passages]
    numbers: list[int] = []
    pieces = [text[a:b] for a, b in sentence_spans(text)]
    # "... 합니다.\n[1]" : a marker split off by the sentence splitter belongs to the sentence
    merged: list[str] = []
    for piece in pieces:
        if merged and not _MARKER.sub("", piece).strip(" .,;:"):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    if not merged:
        return False, []
    for sentence in merged:
        cited = [int(n) for m in _MARKER.finditer(sentence)
                 for n in re.split(r"\s*[,;]\s*", m.group(1))]
        words = tokens(_MARKER.sub(" ", sentence))
        if not words:
            continue
        if not cited or any(n < 1 or n > len(passages) for n in cited):
            return False, numbers
        for n in cited:
            if n not in numbers:
                numbers.append(n)
        held = set().union(*(passage_tokens[n - 1] for n in cited))
        if sum(1 for w in words if w in held) / len(words) < MIN_OVERLAP:
            return False, numbers
    return bool(numbers), numbers
