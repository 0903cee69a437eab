"""`reitti webhooks` against the webhook tests' database and server.

In this process, through the command's own entry point: a subprocess per command cost
seconds each here, and tests/cli/test_cli.py already runs `reitti` as a process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.cli.main import main
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_delivery import post_events

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def reitti(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return run


def test_add_list_rotate_disable_enable_redeliver_and_remove(
    webhook_database: str,
    hooks_api: httpx.Client,
    hook_keys: dict[str, dict[str, str]],
    receiver: Receiver,
    reitti: Run,
) -> None:
    env = {"REITTI_DATABASE_URL": webhook_database, "REITTI_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    refused = reitti("webhooks", "add", "https://192.168.1.1/x", env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: url ")
    unknown = reitti("webhooks", "add", receiver.url, "--unit", "nowhere", env=env)
    assert unknown.returncode == 2
    assert "units.0 is not a unit id" in unknown.stderr

    added = reitti("webhooks", "add", receiver.url, "--kind", "decision", "--unit", "central-oeo", env=env)
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    webhook_id = added.stdout.split()[1]
    listed = reitti("webhooks", "list", env=env).stdout
    assert f"{webhook_id}\tenabled\t{receiver.url}\tkinds=decision units=central-oeo event_types=all" in listed
    assert secret not in listed

    rotated = reitti("webhooks", "rotate", webhook_id, env=env)
    new_secret = rotated.stdout.strip().splitlines()[-1]
    post_events(hooks_api, hook_keys["integration"], 1, "cli")
    receiver.wait_for(lambda: len(receiver.delivered()) == 1)
    for key in (secret, new_secret):
        Webhook(key).verify(receiver.received[0].body, receiver.received[0].headers)

    assert reitti("webhooks", "disable", webhook_id, env=env).returncode == 0
    assert "disabled (admin)" in reitti("webhooks", "list", env=env).stdout
    assert reitti("webhooks", "enable", webhook_id, env=env).returncode == 0
    assert "0 dead message(s)" in reitti("webhooks", "redeliver", webhook_id, env=env).stdout
    assert reitti("webhooks", "remove", webhook_id, env=env).returncode == 0
    assert reitti("webhooks", "remove", webhook_id, env=env).returncode == 1
    assert reitti("webhooks", "list", env=env).stdout == ""
