"""Checking and pseudonymising customer identifiers."""

from __future__ import annotations

import hashlib
import hmac

from app.identity_codes import IdentifierKind, InvalidIdentifier, check_identifier, contains_identity_code

__all__ = [
    "IdentifierKind",
    "InvalidIdentifier",
    "check_identifier",
    "contains_identity_code",
    "pseudonymise",
]


def pseudonymise(key: bytes, value: str) -> str:
    """Return the HMAC-SHA256 hex digest of the UTF-8 value under key."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
