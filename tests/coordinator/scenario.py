"""A publisher, trainers and one job, driven through the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from califusion.coordinator.db import Database
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity

from .factories import spec_json
from .harness import SignedClient, stored_state

WRAPPED_KEY = b64e(b"job key sealed to the trainer" * 2)


class Scenario:
    def __init__(
        self,
        api: SignedClient,
        database_url: str,
        publisher: Identity,
        trainers: list[Identity],
        **spec: Any,
    ) -> None:
        self.api = api
        self.db = Database(database_url)  # for reading stored rows directly
        self.publisher = publisher
        self.trainers = trainers
        for identity in (publisher, *trainers):
            api.register(identity)
        self.initial_model = api.put_blob(publisher, b"initial model ciphertext")
        body = {"spec": spec_json(**spec), "initial_model": self.initial_model}
        self.job: dict[str, Any] = api.ok(api.post(publisher, "/v1/jobs", body))
        self.job_id: str = self.job["job_id"]
        self.path = f"/v1/jobs/{self.job_id}"

    def name(self, identity: Identity) -> str:
        return identity.principal.to_text()

    def stored(self) -> dict[str, list[dict[str, Any]]]:
        return stored_state(self.db, self.job_id)

    def close(self) -> None:
        self.db.dispose()

    def act(self, identity: Identity, action: str) -> httpx.Response:
        return self.api.post(identity, f"{self.path}/{action}")

    def join(self, trainer: Identity, samples: int = 100) -> httpx.Response:
        return self.api.post(trainer, f"{self.path}/join", {"declared_samples": samples})

    def admit(self, *trainers: Identity, rejections: tuple[Identity, ...] = ()) -> httpx.Response:
        body = {
            "admissions": [{"trainer": self.name(t), "wrapped_key": WRAPPED_KEY} for t in trainers],
            "rejections": [self.name(t) for t in rejections],
        }
        return self.api.post(self.publisher, f"{self.path}/admissions", body)

    def start_with(self, n: int) -> None:
        """Open, let the first ``n`` trainers join and be admitted, start."""
        self.api.ok(self.act(self.publisher, "open"))
        for trainer in self.trainers[:n]:
            self.api.ok(self.join(trainer))
        self.api.ok(self.admit(*self.trainers[:n]))
        self.api.ok(self.act(self.publisher, "start"))

    def current_round(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api.ok(
            self.api.get(self.publisher, f"{self.path}/rounds/current")
        )
        return result

    def get_job(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api.ok(self.api.get(self.publisher, self.path))
        return result

    def submit(
        self, trainer: Identity, number: int, attempt: int = 0, update: str | None = None
    ) -> httpx.Response:
        if update is None:
            data = f"update {self.name(trainer)} {number} {attempt}".encode()
            update = self.api.put_blob(trainer, data)
        body = {"attempt": attempt, "update": update}
        return self.api.post(trainer, f"{self.path}/rounds/{number}/updates", body)

    def publish(
        self,
        number: int,
        contributors: list[Identity],
        attempt: int = 0,
        model: str | None = None,
        caller: Identity | None = None,
    ) -> httpx.Response:
        if model is None:
            model = self.api.put_blob(self.publisher, f"global model {number}".encode())
        body = {
            "attempt": attempt,
            "model": model,
            "contributors": [self.name(t) for t in contributors],
            "metrics": {"loss": 0.25, "accuracy": 0.9, "samples": 200},
        }
        who = caller or self.publisher
        return self.api.post(who, f"{self.path}/rounds/{number}/result", body)


PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://califusion.dev/problems/{code}"
    return body


def refused(
    s: Scenario, request: Callable[[], httpx.Response], status: int, code: str
) -> dict[str, Any]:
    """Send a request that must fail; assert the problem and that nothing stored changed."""
    before = s.stored()
    body = assert_problem(request(), status, code)
    assert s.stored() == before
    return body
