"""Keys kept outside the database, keyed-hash pseudonyms and encrypted originals.

Keys live as files in ``settings.secrets_dir`` (created on first use, mode 0600, the folder
0700), never in the store, so a copy of the database alone cannot reverse a pseudonym by
hashing guesses, nor decrypt an original text. Key bytes are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import unicodedata
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

PSEUDONYM_KEY = "pseudonym.key"
TEXT_KEY = "text.key"
PREFIX = "urn:maeul:pseudonym:"
_PHONEISH = re.compile(r"^\+?[\d\s().-]{7,}$")


class KeyFile:
    """A 32-byte secret in a file, created atomically on first use."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = Path(folder) / name
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create()
            return self._key

    def _load_or_create(self) -> bytes:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            tmp = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_bytes(32).hex().encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                # link() fails if another process created the key meanwhile: theirs wins
                os.link(tmp, self.path)
                log.info("created key file %s", self.path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        raw = self.path.read_bytes().strip()
        try:
            key = bytes.fromhex(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise RuntimeError(f"key file {self.path} is not 64 hex characters") from None
        if len(key) != 32:
            raise RuntimeError(f"key file {self.path} is not 64 hex characters")
        return key


def normalise_identifier(value: Any) -> str:
    """The canonical text of an identifier, so spellings of one identifier link.

    Unicode NFKC, trimmed, inner whitespace collapsed, lower-cased; a phone-like value keeps
    its digits only, with a +82 country code written as the domestic leading 0."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = " ".join(text.split()).lower()
    if _PHONEISH.match(text):
        digits = re.sub(r"\D", "", text)
        if text.startswith("+82"):
            digits = "0" + digits[2:].lstrip("0")
        return digits
    return text


class Pseudonymiser:
    """HMAC-SHA256 pseudonyms: one identifier, one tenant, one key -> one pseudonym."""

    def __init__(self, key: KeyFile) -> None:
        self.key = key

    def pseudonym(self, tenant: str, value: Any) -> str:
        if isinstance(value, str) and value.startswith(PREFIX):
            return value  # already a pseudonym: writing an entity back must not re-hash it
        msg = f"{tenant}\x00{normalise_identifier(value)}".encode()
        digest = hmac.new(self.key.get(), msg, hashlib.sha256).hexdigest()
        return PREFIX + digest[:32]


class TextVault:
    """AES-256-GCM encryption of original texts, bound to where they belong."""

    def __init__(self, key: KeyFile) -> None:
        self.key = key

    def encrypt(self, text: str, context: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self.key.get()).encrypt(nonce, text.encode("utf-8"), context.encode())
        return base64.b64encode(nonce + ct).decode("ascii")

    def decrypt(self, token: str, context: str) -> str:
        """The plain text; ValueError when the token, key or context does not match."""
        try:
            raw = base64.b64decode(token.encode("ascii"), validate=True)
            plain = AESGCM(self.key.get()).decrypt(raw[:12], raw[12:], context.encode())
        except (InvalidTag, ValueError, UnicodeEncodeError):
            raise ValueError("the original cannot be decrypted with this key") from None
        return plain.decode("utf-8")
