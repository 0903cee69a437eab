"""Settings, read from the environment once, when the app or a command starts."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url

log = logging.getLogger("reitti")

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{REPOSITORY / 'var' / 'reitti.db'}"
MAX_BODY_BYTES = 64 * 1024
# How far ahead of the service's clock an event may say it occurred: clocks of client systems drift.
FUTURE_TOLERANCE_SECONDS = 300
# Seconds from one failed delivery of a webhook to the next attempt: the Standard Webhooks
# schedule (at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); jitter is added to each.
WEBHOOK_RETRY_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
WEBHOOK_TIMEOUT_SECONDS = 15.0


Number = TypeVar("Number", int, float)


def _positive(env: Mapping[str, str], variable: str, default: Number, kind: type[Number]) -> Number:
    """A positive number from a variable; a clear error naming the variable otherwise."""
    text = env.get(variable)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{variable} must be a positive number, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"{variable} must be a positive number, not {text!r}")
    return value


def _switch(env: Mapping[str, str], variable: str, default: bool) -> bool:
    """On or off from a variable; a clear error naming the variable otherwise."""
    text = env.get(variable, "").strip().lower()
    if not text:
        return default
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"{variable} must be on or off, not {text!r}")


def _schedule(env: Mapping[str, str], variable: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Seconds, comma-separated, none negative and at least one; a clear error naming the variable otherwise."""
    text = env.get(variable)
    if not text:
        return default
    try:
        schedule = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"{variable} must be seconds, comma-separated, not {text!r}") from None
    if any(step < 0 for step in schedule):
        raise ValueError(f"{variable} must not hold a negative number of seconds")
    return schedule


# The variable that says whether workers store their decisions in processes of their own.
STORING_PROCESS = "REITTI_STORING_PROCESS"


@dataclass(frozen=True)
class Settings:
    """What the service needs to know about its surroundings."""

    database_url: str = DEFAULT_DATABASE_URL
    rules_dir: Path = REPOSITORY / "rules"
    pseudonym_key: str | None = None
    checkpoint_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    session_secret: str | None = None
    # A UI session ends after this long without a request (and after eight hours in any case).
    session_idle_minutes: int = 30
    # The nth failed login of a (name, address) pair waits this times 2**n seconds, capped.
    login_delay_seconds: float = 1.0
    chain_key: str | None = None
    chain_old_keys: tuple[str, ...] = ()
    checkpoint_dir: Path | None = None
    checkpoint_every: float = 300.0
    future_tolerance_seconds: int = FUTURE_TOLERANCE_SECONDS
    # Serve only rule sets released by two approvers' signatures (app/rules/releases.py); off
    # until an area's approvers have keys, so a fresh checkout and its tests run unsigned.
    require_signed_rules: bool = False
    # Sign-in through the municipality's OpenID provider (app/access/oidc.py), on when the issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid profile"
    # The operator's mapping from claims to Reitti's roles (app/access/claims.py).
    oidc_claims: Path | None = None
    # The `aud` of the provider's access tokens meant for Reitti's API; unset, integrations use API keys only.
    oidc_api_audience: str | None = None
    # Where browsers reach the service, when a proxy stands in front of it: the provider redirects back here.
    public_url: str | None = None
    # Off: local password accounts cannot log in, and their sessions end; only the provider's people sign in.
    local_accounts: bool = True
    webhook_retry_schedule: tuple[float, ...] = WEBHOOK_RETRY_SCHEDULE
    # Hosts that webhooks may reach although their addresses are loopback or private.
    webhook_allow_hosts: frozenset[str] = frozenset()
    webhook_timeout_seconds: float = WEBHOOK_TIMEOUT_SECONDS
    # How often an idle delivery worker looks for due messages.
    webhook_poll_seconds: float = 1.0
    # A bearer token that reads GET /metrics alone (for a scraper); admins' keys read it too.
    metrics_token: str | None = None
    # Where the engine keeps each rule set's decision table, by sha256: a warm start reads it
    # instead of putting the whole input domain to durable-rules again. None: no cache.
    cache_dir: Path | None = REPOSITORY / "var" / "cache"
    # Each worker stores its decisions in a process of its own (app/decisions/storing.py); off, in
    # its writer thread, on its own interpreter lock (REITTI_STORING_PROCESS=off).
    storing_process: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        """Read REITTI_* variables; unset ones keep their defaults."""
        env = os.environ
        return cls(
            database_url=env.get("REITTI_DATABASE_URL", DEFAULT_DATABASE_URL),
            rules_dir=Path(env.get("REITTI_RULES_DIR", REPOSITORY / "rules")),
            pseudonym_key=env.get("REITTI_PSEUDONYM_KEY") or None,
            checkpoint_key=env.get("REITTI_CHECKPOINT_KEY") or None,
            max_body_bytes=int(env.get("REITTI_MAX_BODY_BYTES", MAX_BODY_BYTES)),
            session_secret=env.get("REITTI_SESSION_SECRET") or None,
            session_idle_minutes=_positive(env, "REITTI_SESSION_IDLE_MINUTES", 30, int),
            login_delay_seconds=_positive(env, "REITTI_LOGIN_DELAY_SECONDS", 1.0, float),
            chain_key=env.get("REITTI_CHAIN_KEY") or None,
            chain_old_keys=tuple(key for key in env.get("REITTI_CHAIN_OLD_KEYS", "").split(",") if key),
            checkpoint_dir=Path(env["REITTI_CHECKPOINT_DIR"]) if env.get("REITTI_CHECKPOINT_DIR") else None,
            checkpoint_every=float(env.get("REITTI_CHECKPOINT_EVERY", 300)),
            future_tolerance_seconds=_positive(env, "REITTI_FUTURE_TOLERANCE", FUTURE_TOLERANCE_SECONDS, int),
            require_signed_rules=_switch(env, "REITTI_REQUIRE_SIGNED_RULES", False),
            oidc_issuer=env.get("REITTI_OIDC_ISSUER") or None,
            oidc_client_id=env.get("REITTI_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("REITTI_OIDC_CLIENT_SECRET") or None,
            oidc_scopes=env.get("REITTI_OIDC_SCOPES") or "openid profile",
            oidc_claims=Path(env["REITTI_OIDC_CLAIMS"]) if env.get("REITTI_OIDC_CLAIMS") else None,
            oidc_api_audience=env.get("REITTI_OIDC_API_AUDIENCE") or None,
            public_url=(env.get("REITTI_PUBLIC_URL") or "").rstrip("/") or None,
            local_accounts=_switch(env, "REITTI_LOCAL_ACCOUNTS", True),
            webhook_retry_schedule=_schedule(env, "REITTI_WEBHOOK_RETRY_SCHEDULE", WEBHOOK_RETRY_SCHEDULE),
            webhook_allow_hosts=frozenset(
                host.strip().lower() for host in env.get("REITTI_WEBHOOK_ALLOW_HOSTS", "").split(",") if host.strip()
            ),
            webhook_timeout_seconds=_positive(env, "REITTI_WEBHOOK_TIMEOUT", WEBHOOK_TIMEOUT_SECONDS, float),
            webhook_poll_seconds=_positive(env, "REITTI_WEBHOOK_POLL_SECONDS", 1.0, float),
            metrics_token=env.get("REITTI_METRICS_TOKEN") or None,
            cache_dir=Path(env.get("REITTI_CACHE_DIR") or REPOSITORY / "var" / "cache"),
            storing_process=_switch(env, STORING_PROCESS, True),
        )

    def check_sign_in(self) -> None:
        """Refuse (ValueError, naming the variable) sign-in settings that cannot work together."""
        if self.oidc_issuer is None:
            if not self.local_accounts:
                raise ValueError("REITTI_LOCAL_ACCOUNTS=off needs REITTI_OIDC_ISSUER: nobody could sign in")
            return
        for variable, value in (
            ("REITTI_OIDC_CLIENT_ID", self.oidc_client_id),
            ("REITTI_OIDC_CLIENT_SECRET", self.oidc_client_secret),
            ("REITTI_OIDC_CLAIMS", self.oidc_claims),
        ):
            if not value:
                raise ValueError(f"REITTI_OIDC_ISSUER is set, so {variable} must be too")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("REITTI_OIDC_SCOPES must include openid")

    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None for another database."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database)

    def resolve_session_secret(self) -> bytes:
        """The key that signs the UI's session cookies: the variable, or one kept beside the SQLite file.

        Like the pseudonym key it is made once beside a SQLite database, with a warning;
        on PostgreSQL (production) the service refuses to start without REITTI_SESSION_SECRET.
        """
        return self._key(self.session_secret, "REITTI_SESSION_SECRET", ".session-secret")

    def resolve_pseudonym_key(self) -> bytes:
        """The HMAC key for pseudonyms: the variable, or a key kept beside the SQLite file.

        Without REITTI_PSEUDONYM_KEY the service makes a random key on first run and keeps
        it beside the SQLite file, so that pseudonyms stay stable across restarts. Losing
        that file makes old pseudonyms unsearchable: production sets the variable.
        """
        return self._key(self.pseudonym_key, "REITTI_PSEUDONYM_KEY", ".pseudonym-key")

    def resolve_checkpoint_key(self) -> bytes:
        """The HMAC key that signs checkpoints of the audit chain: the variable, or a key beside the SQLite file.

        The key must not be in the database: whoever can rewrite the chain there must not
        also be able to sign a checkpoint that agrees with it. A key file beside a SQLite
        database is only as far away as the file system: production sets the variable.
        """
        return self._key(self.checkpoint_key, "REITTI_CHECKPOINT_KEY", ".checkpoint-key")

    def resolve_chain_key(self) -> bytes:
        """The key whose MAC on each link proves the service wrote it: the variable, or a key beside the SQLite file.

        Like the checkpoint key it must stay out of the database and its backups: whoever
        holds it and can write to the database can forge links.
        """
        return self._key(self.chain_key, "REITTI_CHAIN_KEY", ".chain-key")

    def _key(self, value: str | None, variable: str, suffix: str) -> bytes:
        """A key from its variable; without it, one made once and kept beside the SQLite file."""
        if value:
            return value.encode("utf-8")
        database = self.sqlite_path()
        if database is None:
            raise RuntimeError(f"{variable} must be set when the database is not a SQLite file")
        key_file = database.with_name(database.name + suffix)
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            log.warning("%s is not set: made a random key in %s; set the variable in production", variable, key_file)
        else:
            log.warning("%s is not set: using the key kept in %s", variable, key_file)
        return key_file.read_text().strip().encode("utf-8")
