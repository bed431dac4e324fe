"""The digest that seals every file deltaprop writes: which bytes it covers, where it sits.

A model file's or checkpoint's JSON document closes with the entry ``"digest": "<64 hex
digits>"``: the blake2b-256 digest of every byte of the file, those 64 digits read as "0"s.
Writers put :data:`DIGEST_PLACEHOLDER` there (:func:`with_digest_entry`) and :func:`seal`
writes the digest over it; :func:`verify` checks it when a file is read. Inside the document, not
as a second safetensors metadata key, so that the bytes of a file stay deterministic (the
safetensors writer orders metadata keys at random) and deltaprop 0.1, which ignores entries it
does not know, still reads new files.

Standard library only.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

DIGEST_KEY = "digest"
DIGEST_NAME = "blake2b-256"
DIGEST_PLACEHOLDER = "0" * 64
# The digest entry ends the document, a JSON string inside the JSON header: after the digits
# come an escaped quote, the document's closing brace and the string's own closing quote.
_RAW_DIGEST_END = b'\\"}"'


def with_digest_entry(document: dict) -> dict:
    """``document`` with the digest placeholder as its last entry, ready to be sealed."""
    if DIGEST_KEY in document:
        raise ValueError(f"a document must not hold its own {DIGEST_KEY!r} entry")
    return {**document, DIGEST_KEY: DIGEST_PLACEHOLDER}


def seal(data: bytes, text: str) -> bytes:
    """The safetensors file ``data``, whose document ``text`` closes with the placeholder,
    with the placeholder replaced by the digest of the file."""
    if _digest_in(text) != DIGEST_PLACEHOLDER:
        raise ValueError("the document must close with the digest placeholder entry")
    sealed = bytearray(data)
    (header_len,) = struct.unpack("<Q", data[:8])
    pattern = _raw_digest_entry(DIGEST_PLACEHOLDER.encode())
    where = sealed.rfind(pattern, 8, 8 + header_len)
    at = where + len(pattern) - len(DIGEST_PLACEHOLDER) - len(_RAW_DIGEST_END)
    sealed[at : at + len(DIGEST_PLACEHOLDER)] = _digest_of(sealed, at).encode()
    return bytes(sealed)


def verify(
    path: object,
    buffer: bytearray,
    header_start: int,
    header_len: int,
    text: str,
    document: dict,
    error: Callable[[str], Exception],
) -> str | None:
    """:data:`DIGEST_NAME` once the digest that closes the document ``text`` (the file's,
    whose header is ``buffer[header_start:][:header_len]``) matches the bytes of ``buffer``;
    None for a file without one (written before deltaprop wrote digests); ``error`` naming
    ``path`` otherwise.

    The digest is of every byte of the file, the 64 hex digits of the digest itself read as
    "0"s. So a file is accepted only as the very bytes its writer made: a change anywhere,
    even one that leaves the JSON valid (a digit of a learning rate, a space), is refused.
    """
    found = _digest_in(text)
    if found is None:
        if DIGEST_KEY in document:
            raise error(
                f"{path}: the file is corrupt: its {DIGEST_KEY!r} entry is not 64 hexadecimal "
                "digits closing the document, where deltaprop writes it"
            )
        return None
    hex_digits = found.encode()
    pattern = _raw_digest_entry(hex_digits)
    header_raw = bytes(buffer[header_start : header_start + header_len])
    where = header_raw.find(pattern)
    if where < 0 or header_raw.find(pattern, where + 1) >= 0:
        raise error(f"{path}: the file is corrupt: its digest entry is not found exactly once")
    at = header_start + where + len(pattern) - len(hex_digits) - len(_RAW_DIGEST_END)
    if _digest_of(buffer, at).encode() != hex_digits:
        raise error(
            f"{path}: the file is corrupt: its content does not match its {DIGEST_NAME} "
            "digest (it changed after it was written: a disk or transfer error, or an edit)"
        )
    return DIGEST_NAME


def _digest_in(text: str) -> str | None:
    """The hex digits of the digest entry that closes a document's text, if it has one."""
    opening = f',"{DIGEST_KEY}":"'
    tail = text[-(len(opening) + len(DIGEST_PLACEHOLDER) + 2) :]
    digits = tail[len(opening) : -2]
    if (
        tail.startswith(opening)
        and tail.endswith('"}')
        and len(digits) == len(DIGEST_PLACEHOLDER)
        and all(c in "0123456789abcdef" for c in digits)
    ):
        return digits
    return None


def _digest_of(data: bytes | bytearray, at: int) -> str:
    """The hex blake2b digest of ``data`` with the 64 bytes at ``at`` read as "0"s."""
    view = memoryview(data)
    hasher = hashlib.blake2b(digest_size=32)
    hasher.update(view[:at])
    hasher.update(DIGEST_PLACEHOLDER.encode())
    hasher.update(view[at + len(DIGEST_PLACEHOLDER) :])
    return hasher.hexdigest()


def _raw_digest_entry(hex_digits: bytes) -> bytes:
    """The digest entry as the safetensors header spells it: the last entry of the document,
    a JSON string inside the JSON header, so its quotes are escaped and an unescaped quote
    (the end of that string) follows; nothing else in a header can spell this."""
    return b',\\"' + DIGEST_KEY.encode() + b'\\":\\"' + hex_digits + _RAW_DIGEST_END
