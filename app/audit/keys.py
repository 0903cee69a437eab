"""The chain key: the MAC on every link and access-log entry proves the service wrote it.

The hash chain alone has no secret: whoever can write to the database can append a record
and a link computed as the README describes. A MAC under a key the database does not hold
(REITTI_CHAIN_KEY) is what such a writer cannot compute. Each MAC names its key by an id
derived from the key, so keys can rotate: the service signs with the current key, and
verification needs every key whose id it meets (the old ones in REITTI_CHAIN_OLD_KEYS).

The keys travel with the sessions (`make_sessions(engine, info=session_info(keys))`), so
that every writer and every verification of one service uses the same keyring.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings

_INFO = "reitti_chain_keys"


def key_id(key: bytes) -> str:
    """A key's public name: 16 hex characters of a hash of it, which say nothing about the key."""
    return hashlib.sha256(b"reitti chain key id\x00" + key).hexdigest()[:16]


def mac(key: bytes, digest: str) -> str:
    """HMAC-SHA256 of a link's hash (hex, as UTF-8) under `key`: `printf %s "$hash" | openssl dgst -sha256 -hmac`."""
    return hmac.new(key, digest.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainKeys:
    """The key the service signs with now, and every key verification may meet, by id."""

    current: str
    keys: Mapping[str, bytes]

    @classmethod
    def of(cls, current: bytes, older: Iterable[bytes] = ()) -> ChainKeys:
        """A keyring that signs with `current` and also checks MACs made with `older` keys."""
        keys = {key_id(key): key for key in older}
        keys[key_id(current)] = current
        return cls(key_id(current), keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainKeys:
        """REITTI_CHAIN_KEY (or the key kept beside a SQLite file) and REITTI_CHAIN_OLD_KEYS."""
        return cls.of(settings.resolve_chain_key(), (key.encode("utf-8") for key in settings.chain_old_keys))

    def sign(self, digest: str) -> tuple[str, str]:
        """(key id, MAC) of a hash under the current key."""
        return self.current, mac(self.keys[self.current], digest)

    def problem(self, key: str | None, signature: str | None, digest: str) -> str | None:
        """Why (key id, MAC) does not vouch for `digest`, or None when it does."""
        if key is None or signature is None:
            return "it has no MAC: it was not written by the service"
        if key not in self.keys:
            return f"its MAC is under key {key}, which this verification was not given: an unknown key"
        if not hmac.compare_digest(signature, mac(self.keys[key], digest)):
            return "its MAC does not match: it was not written by the service, or was edited"
        return None


def session_info(keys: ChainKeys) -> dict[str, Any]:
    """What `make_sessions(..., info=...)` carries for the chain: the keyring."""
    return {_INFO: keys}


def keys_of(session: Session) -> ChainKeys:
    """The keyring the session's factory was given; an error when it was given none."""
    keys = session.info.get(_INFO)
    if not isinstance(keys, ChainKeys):
        raise RuntimeError("this session has no chain keys: make it with make_sessions(..., info=session_info(keys))")
    return keys
