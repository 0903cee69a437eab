"""The tests' OpenID providers, on loopback: the real one, and a forger of ID tokens.

`RealProvider` runs tests/oidc/provider.mjs (oidc-provider on the machine's Node.js, installed by
`make test` from package-lock.json). It signs with a key the test made, so that a test can also sign
tokens that the provider itself would never issue (another audience, expired) with a key that is
in its JWKS, and show that Reitti refuses them for that reason alone.

`ForgingProvider` is for the refusals of ID tokens only: the token the service fetches at the
callback is the one the test put there, signed as the test chose. A real provider's token endpoint
never hands out such a token, and PKCE keeps a test from swapping one in on the way.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.conftest import free_port

HERE = Path(__file__).parent
API = "urn:reitti:api"
UI_CLIENT = ("reitti", "reitti-test-secret")
CLAIMS = HERE / "claims.yaml"
# oidc-provider 8's id for the one key it signs with (provider.mjs).
KEY_ID = "provider-key-1"


def signing_key(kid: str = KEY_ID) -> RSAKey:
    """A new RS256 key with this kid."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def sign(key: RSAKey, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
    """A JWT of these claims, signed by `key` (`alg` none: unsigned, as an attacker would send it)."""
    if alg == "none":
        header = {"alg": "none", "typ": "JWT", "kid": kid or key.kid}
        parts = [base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=") for part in (header, claims)]
        return f"{parts[0]}.{parts[1]}."
    return jwt.encode({"alg": alg, "kid": kid or key.kid}, claims, key)


class RealProvider:
    """oidc-provider on Node.js, with Reitti at `reitti_base_url` as its client."""

    def __init__(self, key: RSAKey, log: Path, reitti_base_url: str = "") -> None:
        # The issuer is known first, Reitti's address (its callback) is set before entering.
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = key
        self.reitti_base_url = reitti_base_url
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RealProvider:
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").exists():
            pytest.fail("the sign-in tests need Node.js and tests/oidc/node_modules: run `make test` (npm ci there)")
        env = {
            **os.environ,
            "PORT": str(self.port),
            "REITTI_BASE_URL": self.reitti_base_url,
            "SIGNING_JWK": json.dumps(self.key.as_dict(private=True)),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([node, "provider.mjs"], cwd=HERE, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                pytest.fail(f"the OpenID provider did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client_credentials(self, client_id: str, *, resource: str = API) -> str:
        """An access token for an integration, by the client credentials grant."""
        answer = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "resource": resource},
            auth=(client_id, f"{client_id}-test-secret"),
            timeout=10,
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token


class ForgingProvider:
    """A provider that publishes a discovery document and a JWKS, and whose token endpoint hands out `id_token`."""

    def __init__(self, key: RSAKey) -> None:
        self.key = key
        self.id_token = ""
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        forger = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": forger.issuer,
                            "authorization_endpoint": f"{forger.issuer}/auth",
                            "token_endpoint": f"{forger.issuer}/token",
                            "jwks_uri": f"{forger.issuer}/jwks",
                        }
                    )
                elif self.path == "/jwks":
                    self._json({"keys": [forger.key.as_dict(private=False)]})
                else:
                    self.send_error(404)

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._json({"access_token": "opaque", "token_type": "Bearer", "id_token": forger.id_token})

            def _json(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ForgingProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
