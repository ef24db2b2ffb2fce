"""Korean and English messages for the web pages (one JSON catalogue per language).

Korean is the default. A page's language comes from the ``lang`` cookie (set by
``/lang/{code}``), else the browser's Accept-Language, else Korean.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGS = ("ko", "en")
DEFAULT = "ko"
LANG_COOKIE = "lang"
_DIR = Path(__file__).parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of one language (``key -> text`` with ``{name}`` placeholders)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}")
    data: dict[str, str] = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)``: the message in ``lang`` (English, then the key, when missing)."""
    primary = catalogue(lang)
    fallback = catalogue("en")

    def t(key: str, **values: Any) -> str:
        text = primary.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The page language: the cookie, else the first of ko/en the browser accepts."""
    if cookie in LANGS:
        return str(cookie)
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return DEFAULT


def pick(value: Any, lang: str) -> Any:
    """A ``{"ko": ..., "en": ...}`` value in ``lang`` (the other language when missing)."""
    if isinstance(value, dict) and (set(value) & set(LANGS)):
        return value.get(lang) or next((value[k] for k in LANGS if value.get(k)), "")
    return value
