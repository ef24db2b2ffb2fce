"""Text and sections out of the city's document formats (used by ``documents.py``).

Each reader returns an ``Extracted``: the document's plain text (what offsets point into),
its title and its sections (heading path, start, end). Markdown and HTML headings make
sections; Korean legal structure (제1장 ..., 제3조(사용료) ...) makes sections in every format;
PDF pages are sections, refined by heading-like lines; plain text uses title lines followed by
a blank line. Hard-wrapped lines of one paragraph are joined, so a sentence is never split by
a line break that only the layout put there.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

# Levels: Markdown/HTML headings use 1-6; the legal hierarchy nests below any of them.
LEVEL_PAGE, LEVEL_PART, LEVEL_CHAPTER, LEVEL_SECTION, LEVEL_ARTICLE = 0, 10, 11, 12, 13

_ARTICLE = re.compile(r"^(제\s?\d+\s?조(?:의\s?\d+)?)\s*(\([^)]{1,40}\))?")
_CHAPTER = re.compile(r"^제\s?\d+\s?(편|장|절)(?:\s+\S.{0,38})?$")
_ADDENDA = re.compile(r"^부\s?칙(?:\s*<[^>]{1,40}>)?$")
_NUMBERED = re.compile(r"^(?:\d{1,2}|[가-하]|[IVX]{1,4})[.)]\s+\S")
_LIST_START = re.compile(
    r"^(?:[-*+•·▪]\s|\d{1,2}[.)]\s|[가-하][.)]\s|[①-⑳]|\(\d{1,2}\)\s|제\s?\d+\s?조)")
_SENTENCE_END = re.compile(r"[.!?。:;…)\]\"'”’]$|(?:다|요|함|음|됨|임)$")


class FormatError(ValueError):
    """The file could not be read as its format (the message says why)."""


@dataclass
class Section:
    """A run of the document text under one heading path (``start``/``end`` exclude it)."""

    path: tuple[str, ...]
    start: int
    end: int


@dataclass
class Extracted:
    text: str
    title: str
    sections: list[Section] = field(default_factory=list)


def _clean(text: str) -> str:
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\ufeff", "")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def _is_heading_line(text: str) -> bool:
    return bool(_CHAPTER.match(text) or _ADDENDA.match(text))


class _Builder:
    """Appends lines to the document text and tracks the heading path of what follows."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.stack: list[tuple[int, str]] = []
        self.sections: list[Section] = []
        self.title = ""
        self._open: tuple[tuple[str, ...], int] | None = None

    def _emit(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def close(self) -> None:
        if self._open is not None:
            path, start = self._open
            if self.size > start:
                self.sections.append(Section(path, start, self.size))
        self._open = None

    def open(self) -> None:
        self._open = (tuple(t for _, t in self.stack), self.size)

    def push(self, level: int, title: str) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))

    def heading(self, level: int, title: str) -> None:
        title = _clean(title)
        if not title:
            return
        self.close()
        if not self.title and level <= 2:
            self.title = title
        self.push(level, title)
        self._emit(title + "\n")
        self.open()

    def line(self, text: str, *, legal: bool = True) -> None:
        """One paragraph or list item; an article or chapter line opens its own section."""
        text = _clean(text)
        if not text:
            return
        if legal:
            chapter = _CHAPTER.match(text)
            if chapter or _ADDENDA.match(text):
                levels = {"편": LEVEL_PART, "장": LEVEL_CHAPTER, "절": LEVEL_SECTION}
                self.heading(levels[chapter.group(1)] if chapter else LEVEL_CHAPTER, text)
                return
            m = _ARTICLE.match(text)
            if m:
                # the article line is body text too: its label is part of what it says
                self.close()
                self.push(LEVEL_ARTICLE, m.group(1).replace(" ", "") + (m.group(2) or ""))
                self.open()
        if self._open is None:
            self.open()
        self._emit(text + "\n")

    def blank(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n\n"):
            self._emit("\n")

    def finish(self, fallback_title: str) -> Extracted:
        self.close()
        return Extracted("".join(self.parts), self.title or fallback_title, self.sections)


def join_wrapped(lines: list[str]) -> list[str]:
    """Join hard-wrapped lines of one paragraph; a list item or article starts a new line."""
    out: list[str] = []
    for raw in lines:
        line = _clean(raw)
        if not line:
            continue
        if out and not _LIST_START.match(line) and not _SENTENCE_END.search(out[-1]) \
                and not _is_heading_line(out[-1]):
            out[-1] = out[-1] + " " + line
        else:
            out.append(line)
    return out


# -- Markdown ------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MD_BULLET = re.compile(r"^\s*[-*+]\s+")


def _md_inline(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    text = text.replace("`", "")
    return re.sub(r"<[^>]{1,80}>", "", text)


def markdown(text: str, fallback_title: str) -> Extracted:
    b = _Builder()
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":  # YAML front matter: metadata, not content
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                lines = lines[i + 1:]
                break
    para: list[str] = []
    fence = False

    def flush() -> None:
        for item in join_wrapped(para):
            b.line(item)
        para.clear()

    for raw in lines:
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            flush()
            fence = not fence
            continue
        if fence:
            b.line(line, legal=False)
            continue
        m = _MD_HEADING.match(line)
        if m:
            flush()
            b.heading(len(m.group(1)), _md_inline(m.group(2)))
        elif len(para) == 1 and stripped and re.fullmatch(r"=+|-+", stripped):
            title = para.pop()  # a setext heading: the line above is underlined
            b.heading(1 if stripped[0] == "=" else 2, title)
        elif not stripped:
            flush()
            b.blank()
        elif _MD_RULE.match(line) or _MD_TABLE_SEP.match(line):
            flush()
        elif stripped.startswith("|"):
            flush()
            cells = [_md_inline(c.strip()) for c in stripped.strip("|").split("|")]
            b.line(" | ".join(cells), legal=False)
        elif stripped.startswith(">"):
            para.append(_md_inline(stripped[1:]))
        elif _MD_BULLET.match(line):
            para.append("- " + _md_inline(_MD_BULLET.sub("", line)))
        else:
            para.append(_md_inline(line))
    flush()
    return b.finish(fallback_title)


# -- HTML ----------------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "nav", "noscript", "template", "svg", "head"})
_BLOCK_TAGS = frozenset({"p", "div", "ul", "ol", "table", "section", "article", "main", "header",
                         "footer", "blockquote", "pre", "dl", "dd", "dt", "figure", "figcaption",
                         "aside", "form", "fieldset", "address", "body", "html", "h5", "h6",
                         "thead", "tbody", "tfoot", "caption", "hr"})
_HEADINGS = ("h1", "h2", "h3", "h4")


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.b = _Builder()
        self.skip: list[str] = []
        self.buf: list[str] = []
        self.heading: int | None = None
        self.cells: list[str] | None = None
        self.page_title: list[str] = []
        self.in_title = False
        self.li = False

    def flush(self) -> None:
        text = _clean("".join(self.buf))
        self.buf.clear()
        if text:
            self.b.line(("- " if self.li else "") + text)
        self.li = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        if tag in _SKIP_TAGS:
            self.skip.append(tag)
        if self.skip:
            return
        if tag in _HEADINGS:
            self.flush()
            self.heading = int(tag[1])
        elif tag == "tr":
            self.flush()
            self.cells = []
        elif tag in ("td", "th") and self.cells is not None:
            self.buf.clear()
        elif tag == "li":
            self.flush()
            self.li = True
        elif tag == "br" or tag in _BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
            return
        if tag in _HEADINGS and self.heading is not None:
            text = "".join(self.buf)
            self.buf.clear()
            self.b.heading(self.heading, text)
            self.heading = None
        elif tag in ("td", "th") and self.cells is not None:
            self.cells.append(_clean("".join(self.buf)))
            self.buf.clear()
        elif tag == "tr" and self.cells is not None:
            row = " | ".join(self.cells)
            self.cells = None
            if row.strip(" |"):
                self.b.line(row, legal=False)
        elif tag == "li" or tag in _BLOCK_TAGS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.page_title.append(data)
        if not self.skip:
            self.buf.append(data)


def html(text: str, fallback_title: str) -> Extracted:
    parser = _Html()
    parser.feed(text)
    parser.close()
    parser.flush()
    title = _clean("".join(parser.page_title)).split("|")[0].strip()
    return parser.b.finish(title or fallback_title)


# -- plain text ----------------------------------------------------------------------------

def _looks_like_title(line: str) -> bool:
    line = line.strip()
    return (0 < len(line) <= 60 and not _SENTENCE_END.search(line) and line[0] not in "[(<-*•"
            and bool(re.search(r"[A-Za-z\uac00-\ud7a3]", line)) and not line.endswith(","))


def plain(text: str, fallback_title: str) -> Extracted:
    b = _Builder()
    blocks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    first = True
    for block in blocks:
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        head = lines[0].strip()
        if len(lines) == 1 and _looks_like_title(head) and not _is_heading_line(head) \
                and not _ARTICLE.match(head):
            b.heading(1 if first else 2, head)
        else:
            for item in join_wrapped(lines):
                b.line(item)
        first = False
        b.blank()
    return b.finish(fallback_title)


# -- PDF -----------------------------------------------------------------------------------

def pdf(path: Path, fallback_title: str) -> Extracted:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FormatError("reading PDF needs the 'nlp' extra: pip install 'maeul[nlp]'") from exc
    # pypdf reports recoverable damage as warnings; a file it cannot read raises instead
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = PdfReader(path)
            if reader.is_encrypted and not reader.decrypt(""):
                raise FormatError("the PDF is encrypted")
            pages = [page.extract_text() or "" for page in reader.pages]
        except FormatError:
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError,
                IndexError, RecursionError) as exc:
            raise FormatError(f"not a readable PDF ({exc.__class__.__name__}: {exc})") from exc
    if not any(p.strip() for p in pages):
        raise FormatError("the PDF has no extractable text (scanned pages need OCR first)")
    b = _Builder()
    for number, page in enumerate(pages, start=1):
        _pdf_page(b, number, page)
    return b.finish(fallback_title)


def _pdf_page(b: _Builder, number: int, page: str) -> None:
    # the page label replaces the previous page's and the running headings carry over
    b.close()
    b.stack = [(LEVEL_PAGE, f"p. {number}")] + [s for s in b.stack if s[0] > LEVEL_PAGE]
    b.open()
    lines = [ln for ln in (_clean(x) for x in page.split("\n")) if ln]
    para: list[str] = []
    prev_ended = True
    for i, line in enumerate(lines):
        if _looks_like_title(line) and prev_ended and not _ARTICLE.match(line) \
                and not _is_heading_line(line):
            in_article = b.stack[-1][0] == LEVEL_ARTICLE
            level: int | None = None
            if _NUMBERED.match(line):
                level = None if in_article else 3
            elif i == 0 or not b.title:
                level = 1  # a page's first short line is its title
            if level is not None:
                for item in join_wrapped(para):
                    b.line(item)
                para.clear()
                if level == 1:
                    b.stack = [s for s in b.stack if s[0] == LEVEL_PAGE]
                b.heading(level, line)
                continue
        para.append(line)
        prev_ended = bool(_SENTENCE_END.search(line))
    for item in join_wrapped(para):
        b.line(item)
    b.blank()
