"""The city's documents as citable passages.

``load_documents(folder_or_files)`` reads Markdown (``.md``, ``.markdown``), HTML (``.html``,
``.htm``), PDF (``.pdf``) and plain text (``.txt``) files, recursively for a folder, and cuts
every section into passages of about 300-700 characters on sentence boundaries (consecutive
passages of one section share a sentence). A passage knows its document (path relative to the
docs root, with ``/``), its heading path, and its ``start``/``end`` offsets into the
document's extracted text, so ``document.text[start:end] == passage.text``.

One bad file never stops a load: unsupported extensions and files over ``max_bytes`` are
*skipped* (with a reason), unreadable ones (broken PDF, binary data, bad encoding) are
*errors* naming the file; both are listed in the ``LoadResult``. Hidden files and folders
(names starting with ``.``) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import docformats
from .text import language

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
            ".pdf": "pdf", ".txt": "text"}
MAX_FILE_BYTES = 20 * 1024 * 1024
MIN_CHARS, MAX_CHARS, OVERLAP_MAX = 300, 700, 200


class DocumentError(ValueError):
    """A file that could not be read; ``doc`` names it."""

    def __init__(self, doc: str, reason: str) -> None:
        super().__init__(f"{doc}: {reason}")
        self.doc = doc
        self.reason = reason


@dataclass(frozen=True)
class Passage:
    """A citable piece of one document section."""

    doc: str
    section: str
    start: int
    end: int
    text: str
    lang: str
    title: str = ""

    def heading(self) -> str:
        """The heading path, starting with the document title (given once)."""
        if not self.section or self.section.startswith(self.title):
            return self.section or self.title
        return f"{self.title} > {self.section}"

    def search_text(self) -> str:
        """What is indexed: the document title and heading path give a passage its topic."""
        return f"{self.heading()}\n{self.text}"


@dataclass
class Document:
    doc: str
    title: str
    kind: str
    text: str
    sections: list[docformats.Section]


@dataclass(frozen=True)
class Problem:
    """A file left out of the load and why."""

    doc: str
    reason: str


@dataclass
class LoadResult:
    root: Path
    documents: list[Document] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Counts and problems (no document text) for logs and the CLI."""
        return {"documents": len(self.documents), "passages": len(self.passages),
                "skipped": [asdict(p) for p in self.skipped],
                "errors": [asdict(p) for p in self.errors]}


# -- sentences and passages ----------------------------------------------------------------

# a sentence ends at a line break or at . ! ? followed by a space, except inside numbers and
# dates ("2024. 1. 1.") and after one-letter abbreviations ("7 p.m. on", "e.g. a")
_BOUNDARY = re.compile(r"\n+|(?<=[.!?。])[\"'”’)]*\s+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text[start:end]``, trimmed of spaces."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cut = start
    for m in _BOUNDARY.finditer(text, start, end):
        if m.group().strip("\n") == m.group() and not _real_stop(text, m.start(), m.end()):
            continue
        spans.append((cut, m.start()))
        cut = m.end()
    spans.append((cut, end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out


def _real_stop(text: str, stop: int, after: int) -> bool:
    before = text[max(0, stop - 4):stop]
    nxt = text[after:after + 1]
    if re.search(r"\d\.$", before) and nxt.isdigit():
        return False  # 2024. 1. 1.
    if re.search(r"(?:^|[\s.(])[A-Za-z]\.$", before):
        return False  # p.m., e.g., U.S.
    return not (nxt.islower() and before.endswith("."))


def _passages_of(doc: str, title: str, text: str, sec: docformats.Section) -> list[Passage]:
    section = " > ".join(sec.path)
    sents = sentence_spans(text, sec.start, sec.end)
    if not sents:
        return []
    # a sentence longer than a passage is cut at spaces so no passage runs far past MAX_CHARS
    pieces: list[tuple[int, int]] = []
    for a, b in sents:
        while b - a > MAX_CHARS:
            cut = text.rfind(" ", a + MIN_CHARS, a + MAX_CHARS)
            cut = cut if cut > a else a + MAX_CHARS
            pieces.append((a, cut))
            a = cut
            while a < b and text[a].isspace():
                a += 1
        pieces.append((a, b))
    groups: list[list[tuple[int, int]]] = [[]]
    for piece in pieces:
        cur = groups[-1]
        if cur and piece[1] - cur[0][0] > MAX_CHARS and cur[-1][1] - cur[0][0] >= MIN_CHARS:
            last = cur[-1]
            groups.append([last] if last[1] - last[0] <= OVERLAP_MAX and len(cur) > 1 else [])
            cur = groups[-1]
        cur.append(piece)
    # a short tail joins the previous passage rather than standing alone
    if len(groups) > 1 and groups[-1][-1][1] - groups[-1][0][0] < MIN_CHARS // 2:
        tail = [p for p in groups.pop() if p not in groups[-1]]
        groups[-1].extend(tail)
    out = []
    for g in groups:
        a, b = g[0][0], g[-1][1]
        body = text[a:b]
        out.append(Passage(doc, section, a, b, body, language(body), title))
    return out


def passages_of(document: Document) -> list[Passage]:
    out: list[Passage] = []
    for sec in document.sections:
        out.extend(_passages_of(document.doc, document.title, document.text, sec))
    return out


# -- loading -------------------------------------------------------------------------------

def _decode(raw: bytes, doc: str) -> str:
    if b"\x00" in raw[:65536]:
        raise DocumentError(doc, "binary data, not text (NUL bytes found)")
    for enc in ("utf-8-sig", "cp949"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        bad = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\r\t\f")
        if bad > max(3, len(text[:65536]) // 100):
            raise DocumentError(doc, "binary data, not text (control characters found)")
        return text
    raise DocumentError(doc, "cannot decode the text: it is neither UTF-8 nor CP949 (EUC-KR)")


def load_file(path: Path, doc: str) -> Document:
    """Extract one file (``doc``: its name in citations); ``DocumentError`` when unreadable."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(doc, f"unsupported file type {path.suffix or '(none)'!r}")
    fallback = path.stem.replace("-", " ").replace("_", " ")
    try:
        if kind == "pdf":
            ex = docformats.pdf(path, fallback)
        else:
            text = _decode(path.read_bytes(), doc)
            ex = {"markdown": docformats.markdown, "html": docformats.html,
                  "text": docformats.plain}[kind](text, fallback)
    except docformats.FormatError as exc:
        raise DocumentError(doc, str(exc)) from exc
    except OSError as exc:
        raise DocumentError(doc, f"cannot read the file ({exc.strerror or exc})") from exc
    if not ex.text.strip():
        raise DocumentError(doc, "no text found in the document")
    return Document(doc, ex.title, kind, ex.text, ex.sections)


def _files(source: Path) -> Iterable[Path]:
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file():
            yield path


def load_documents(source: Path | Iterable[Path], *, root: Path | None = None,
                   max_bytes: int = MAX_FILE_BYTES) -> LoadResult:
    """Load a folder (recursively) or some files; see the module docstring for the rules.

    ``root`` is what document names are relative to (the folder itself, or the files' common
    parent). Raises ``FileNotFoundError`` only when ``source`` is a folder that does not exist.
    """
    if isinstance(source, Path):
        if source.is_dir():
            files, base = list(_files(source)), source
        elif source.exists():
            files, base = [source], source.parent
        else:
            raise FileNotFoundError(f"no such file or folder: {source}")
    else:
        files = list(source)
        parents = [f.parent.resolve() for f in files]
        base = Path(_common(parents)) if parents else Path(".")
    base = root or base
    result = LoadResult(root=base)
    for path in files:
        doc = _name(path, base)
        if path.suffix.lower() not in SUFFIXES:
            result.skipped.append(Problem(doc, f"unsupported file type {path.suffix or '(none)'}"))
            continue
        try:
            size = path.stat().st_size
        except OSError as exc:
            result.errors.append(Problem(doc, f"cannot read the file ({exc.strerror or exc})"))
            continue
        if size > max_bytes:
            result.skipped.append(Problem(doc, f"file too large ({size} bytes > {max_bytes})"))
            continue
        try:
            document = load_file(path, doc)
        except DocumentError as exc:
            result.errors.append(Problem(doc, exc.reason))
            continue
        result.documents.append(document)
        result.passages.extend(passages_of(document))
    return result


def _name(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def _common(paths: list[Path]) -> str:
    import os

    return os.path.commonpath([str(p) for p in paths])
