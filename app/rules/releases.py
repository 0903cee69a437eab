"""Signed releases: a rule-set version is released when two distinct approvers have signed its sha256.

Four eyes on the law of the area. Each approver's Ed25519 public key is kept with the rules
(`rules/approvers/<name>.pub`, PEM), added by a reviewed commit; the private half never enters
the repository. A signature lives beside the version it signs (`rules/<version>/signatures/
<name>.yaml`) and covers the version, the rule set's sha256 (its files and the shared registry
files, as the loader computes it) and the moment of signing, so the page that says who signed
and when shows what was signed, not what someone typed.

Nothing in a signature file is trusted but the signature: the approver is the key that
verifies it, never the file's name, so a copy of one approver's signature under another name
is one approver signing twice, not a second pair of eyes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.rules.model import APPROVALS_NEEDED, Release, RulesError, Signature
from app.rules.strict_yaml import MappingReader, read_yaml

APPROVERS_FOLDER = "approvers"
SIGNATURES_FOLDER = "signatures"


class UnreleasedRules(RulesError):
    """Signed rules are required and a version is not released: the message is the one line to show."""


@dataclass(frozen=True)
class Approver:
    """A person who may release rules: the name of their key file, and the key."""

    name: str
    fingerprint: str
    key: Ed25519PublicKey = field(repr=False, compare=False)


def fingerprint(key: Ed25519PublicKey) -> str:
    """The key's id as signatures name it: the sha256 of its 32 raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signed_message(version: str, sha256: str, signed_at: str) -> bytes:
    """What an approver signs: canonical JSON of the version, its sha256 and when."""
    document = {"purpose": "reitti rule-set release", "version": version, "sha256": sha256, "signed_at": signed_at}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def load_approvers(rules_dir: Path) -> dict[str, Approver]:
    """The approvers' public keys, by fingerprint; a key that is not Ed25519, or one kept twice, is refused."""
    approvers: dict[str, Approver] = {}
    for path in sorted((rules_dir / APPROVERS_FOLDER).glob("*.pub")):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError:
            raise RulesError(f"{path}: not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise RulesError(f"{path}: an approver's key must be Ed25519")
        approver = Approver(path.stem, fingerprint(key), key)
        if approver.fingerprint in approvers:
            raise RulesError(f"{path}: the same key as {approvers[approver.fingerprint].name}.pub")
        approvers[approver.fingerprint] = approver
    return approvers


def verify_release(folder: Path, version: str, sha256: str, approvers: Mapping[str, Approver]) -> Release:
    """Check every signature beside a version against its current sha256 and the approvers' keys."""
    problems: list[str] = []
    signatures: list[Signature] = []
    for path in sorted((folder / SIGNATURES_FOLDER).glob("*")):
        name = f"{SIGNATURES_FOLDER}/{path.name}"
        try:
            found = _read_signature(path, version, sha256, approvers)
        except _Doubt as doubt:
            problems.append(f"{name}: {doubt}")
            continue
        twice = next((s for s in signatures if s.fingerprint == found.fingerprint), None)
        if twice is not None:
            problems.append(f"{name}: {found.approver} signed twice; one approver counts once")
            continue
        signatures.append(found)
    if len(signatures) < APPROVALS_NEEDED:
        who = ", ".join(s.approver for s in signatures) or "nobody"
        problems.append(f"signed by {len(signatures)} approver(s) ({who}), {APPROVALS_NEEDED} needed")
    return Release(tuple(signatures), tuple(problems))


class _Doubt(Exception):
    """A signature that does not stand."""


def _read_signature(path: Path, version: str, sha256: str, approvers: Mapping[str, Approver]) -> Signature:
    if path.suffix != ".yaml" or not path.is_file():
        raise _Doubt("not a signature file (<approver>.yaml)")
    try:
        item = MappingReader(read_yaml(path), str(path))
        signed_version, signed_sha = item.text("version"), item.text("sha256")
        key_id, signed_at, signature = item.text("key"), item.text("signed_at"), item.text("signature")
        item.done()
    except RulesError as error:
        raise _Doubt(str(error).removeprefix(f"{path}: ")) from None
    approver = approvers.get(key_id)
    if approver is None:
        raise _Doubt(f"signed with an unknown key {key_id[:16]}… (not in rules/{APPROVERS_FOLDER}/)")
    if signed_version != version:
        raise _Doubt(f"signs version {signed_version}, not {version}")
    try:
        approver.key.verify(base64.b64decode(signature, validate=True), signed_message(version, signed_sha, signed_at))
        moment = datetime.fromisoformat(signed_at)
    except (InvalidSignature, binascii.Error, ValueError):
        raise _Doubt(f"{approver.name}'s signature does not verify (a bad signature)") from None
    if signed_sha != sha256:
        now = f"the files are now {sha256[:12]}…"
        raise _Doubt(f"{approver.name} signed sha256 {signed_sha[:12]}…, {now}: changed after signing")
    return Signature(approver.name, approver.fingerprint, moment)


def sign(
    folder: Path, version: str, sha256: str, private_key: Ed25519PrivateKey, approvers: Mapping[str, Approver]
) -> Path:
    """Add the key's signature of the version's current sha256; the key must be an approver's."""
    key_id = fingerprint(private_key.public_key())
    approver = approvers.get(key_id)
    if approver is None:
        raise RulesError(f"the key is not an approver's: add its public half to rules/{APPROVERS_FOLDER}/ first")
    existing = verify_release(folder, version, sha256, approvers)
    if any(s.fingerprint == key_id for s in existing.signatures):
        raise RulesError(f"{approver.name} has already signed {version} as it is now")
    signed_at = datetime.now(UTC).isoformat(timespec="seconds")
    signature = private_key.sign(signed_message(version, sha256, signed_at))
    document = {
        "version": version,
        "sha256": sha256,
        "key": key_id,
        "signed_at": signed_at,
        "signature": base64.b64encode(signature).decode(),
    }
    target = folder / SIGNATURES_FOLDER / f"{approver.name}.yaml"
    target.parent.mkdir(exist_ok=True)
    # An approver's signature of an earlier content of the version is replaced, not kept beside.
    target.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target


def make_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A new approver's key pair: NAME.key (private, 0600, never committed) and NAME.pub."""
    private = Ed25519PrivateKey.generate()
    key_path, pub_path = folder / f"{name}.key", folder / f"{name}.pub"
    if key_path.exists() or pub_path.exists():
        raise RulesError(f"{key_path} or {pub_path} exists already")
    folder.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(pem)
    pub_path.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_path, pub_path


def read_private_key(path: Path) -> Ed25519PrivateKey:
    """An approver's private key from its PEM file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise RulesError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise RulesError(f"{path}: not an Ed25519 key")
    return key
