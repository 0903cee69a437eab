"""Several worker processes: duplicate storms and workers killed with SIGKILL under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import REPOSITORY, STORING_PROCESS
from app.db import make_engine
from tests.conftest import (
    TEST_CHAIN_KEY,
    TEST_CHECKPOINT_KEY,
    TEST_PSEUDONYM_KEY,
    TEST_SESSION_SECRET,
    KeyMaker,
    chain_verifies,
    empty_the_log,
    free_port,
)


class Workers:
    """`reitti serve --workers N` as an operator runs it, on the test database."""

    def __init__(self, database_url: str, workers: int = 2, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "REITTI_DATABASE_URL": database_url,
            "REITTI_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
            "REITTI_SESSION_SECRET": TEST_SESSION_SECRET,
            "REITTI_CHECKPOINT_KEY": TEST_CHECKPOINT_KEY,
            "REITTI_CHAIN_KEY": TEST_CHAIN_KEY,
            **settings,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port), "--workers", str(workers)],
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # A start whose decision table is not cached yet walks the input domain first.
        deadline = time.monotonic() + 90
        while not self.ready(workers):
            if time.monotonic() > deadline:
                self.close()  # not left running after the test
                raise AssertionError("the workers did not start")
            time.sleep(0.1)

    def children(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in found.stdout.split()]

    def ready(self, workers: int) -> bool:
        # the supervisor also runs a small helper process besides the workers; one worker is the process itself
        try:
            started = workers == 1 or len(self.children()) >= workers
            return started and httpx.get(f"{self.base_url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(params=["on", "off"], ids=["storing-processes", "writer-threads"])
def workers(request: pytest.FixtureRequest, database_url: str) -> Iterator[Workers]:
    """Two workers, storing in processes of their own or in their writer threads: either must hold."""
    running = Workers(database_url, **{STORING_PROCESS: request.param})
    yield running
    running.close()
    empty_the_log(database_url)


def storing_processes(workers: Workers) -> int:
    """How many storing processes the workers run: their own children, started as the workers were (spawn)."""
    found = 0
    for worker in workers.children():
        listed = subprocess.run(["pgrep", "-P", str(worker)], capture_output=True, text=True, check=False).stdout
        for pid in listed.split():
            found += "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    return found


@pytest.mark.parametrize("told", ["on", "off", None])
def test_the_workers_store_where_the_operator_tells_them(database_url: str, told: str | None) -> None:
    """A storing process for each worker unless REITTI_STORING_PROCESS is off."""
    apart = told != "off"
    running = Workers(database_url, **({STORING_PROCESS: told} if told else {}))
    try:
        deadline = time.monotonic() + 10  # a worker starts its storing process as its lifespan opens
        while storing_processes(running) != (2 if apart else 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert storing_processes(running) == (2 if apart else 0)
    finally:
        running.close()


def event(event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "labour_policy_statement",
        "occurred_at": "2025-03-03T09:15:00+02:00",
        "customer": {"type": "jobseeker", "id": f"w-{event_id}", "home_municipality": "564"},
        "attributes": {"requires_special_expertise": event_id.endswith(("1", "3", "5", "7", "9"))},
    }


def logged(database_url: str) -> list[tuple[str, str]]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT event_id, decision_id FROM decisions")).all()
    engine.dispose()
    return [(row.event_id, row.decision_id) for row in rows]


def assert_one_decision_per_event(
    database_url: str, events: list[str], answers: dict[str, list[tuple[int, str]]]
) -> None:
    """After a storm: each event stored once, answered 201 once and with the first response on every
    repeat; the chain intact."""
    stored = logged(database_url)
    assert sorted(e for e, _ in stored) == sorted(events)
    for event_id, replies in answers.items():
        statuses = sorted(status for status, _ in replies)
        assert statuses.count(201) == 1, (event_id, statuses)
        assert set(statuses) == {200, 201}
        assert len({body for _, body in replies}) == 1, "every repeat gets the first response"
    intact, links, summary = chain_verifies(database_url)
    assert intact, summary
    assert links == len(events)


def test_duplicate_storm_across_workers_makes_one_decision_per_event(
    workers: Workers, make_key: KeyMaker, database_url: str
) -> None:
    key = make_key(name="storm")
    events = [f"s{n}" for n in range(40)]
    answers: dict[str, list[tuple[int, str]]] = {e: [] for e in events}
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=workers.base_url, headers=key, timeout=30) as http:
            for _repeat in range(3):
                for event_id in events[offset::2] + events[:offset:2]:
                    response = http.post("/v1/events", json=event(event_id))
                    with lock:
                        answers[event_id].append((response.status_code, response.text))

    threads = [threading.Thread(target=client, args=(n % 4,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert_one_decision_per_event(database_url, events, answers)


def test_two_instances_on_one_database_make_one_decision_per_event_of_a_storm(
    database_url: str, make_key: KeyMaker
) -> None:
    """Two `reitti serve`, as two machines would run them, each storm event posted to both at once."""
    key = make_key(name="storm-two")
    instances: list[Workers] = []
    events = [f"t{n}" for n in range(40)]
    answers: dict[str, list[tuple[int, str]]] = {e: [] for e in events}
    lock = threading.Lock()

    def client(number: int) -> None:
        instance = instances[number % 2]
        with httpx.Client(base_url=instance.base_url, headers=key, timeout=30) as http:
            for event_id in events[number % 4 :: 2] + events[: number % 4 : 2] + events:
                response = http.post("/v1/events", json=event(event_id))
                with lock:
                    answers[event_id].append((response.status_code, response.text))

    try:
        instances += [Workers(database_url, workers=1), Workers(database_url, workers=1)]
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for instance in instances:
            instance.close()
    try:
        assert_one_decision_per_event(database_url, events, answers)
    finally:
        empty_the_log(database_url)


def test_workers_killed_with_sigkill_lose_and_duplicate_nothing(
    workers: Workers, make_key: KeyMaker, database_url: str
) -> None:
    key = make_key(name="killed")
    acknowledged: dict[str, str] = {}
    statuses: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def client(number: int) -> None:
        sent = 0
        with httpx.Client(base_url=workers.base_url, headers=key, timeout=10) as http:
            while not stop.is_set():
                event_id = f"k{number}-{sent}"
                while not stop.is_set():  # retry until acknowledged
                    try:
                        response = http.post("/v1/events", json=event(event_id))
                    except httpx.TransportError:
                        time.sleep(0.02)
                        continue
                    with lock:
                        statuses.append(response.status_code)
                    if response.status_code in (200, 201):
                        with lock:
                            acknowledged[event_id] = response.json()["decision_id"]
                        break
                sent += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    kills = 0
    deadline = time.monotonic() + 60
    while kills < 6 and time.monotonic() < deadline:
        time.sleep(0.7)
        children = workers.children()
        if children:
            os.kill(children[kills % len(children)], signal.SIGKILL)
            kills += 1
    time.sleep(2)  # the supervisor restarts the killed workers; clients go on
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    stored = logged(database_url)
    by_event = dict(stored)
    assert kills == 6
    assert len(by_event) == len(stored), "an event stored twice"
    assert acknowledged.items() <= by_event.items(), "an acknowledged decision missing or different"
    assert len(acknowledged) > 50
    assert all(status < 500 for status in statuses)
    intact, links, summary = chain_verifies(database_url)
    assert intact, summary  # no half-written row: every decision has its link, and they hold
    assert links == len(stored)
