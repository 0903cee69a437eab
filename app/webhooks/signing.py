"""Signatures of the Standard Webhooks specification: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`.

A secret is `whsec_` and base64 of 24 random bytes; the HMAC key is those bytes, as the
specification's own libraries read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret, shown once to whoever made the subscription."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def new_message_id() -> str:
    """A `webhook-id`: unique, and the same on every attempt to deliver one message."""
    return f"msg_{uuid.uuid4().hex}"


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The signature of one message under one secret: `v1,<base64>`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_in_force: list[str], *, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per secret in force, space-separated.

    After a rotation both the new and the previous secret sign for a while, so that a
    receiver verifies with either while it changes over.
    """
    return " ".join(sign(secret, message_id=message_id, timestamp=timestamp, body=body) for secret in secrets_in_force)
