"""The job lifecycle and its rounds over HTTP, on both backends: the happy path, updates,
results, and deadlines that never leave a round hanging."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from califusion.coordinator import create_app
from califusion.core.clock import FakeClock
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity

from .harness import SignedClient, running
from .scenario import WRAPPED_KEY, Scenario, assert_problem, refused


@pytest.fixture
def s(
    api: SignedClient, database_url: str, publisher: Identity, trainers: list[Identity]
) -> Iterator[Scenario]:
    scenario = Scenario(api, database_url, publisher, trainers)
    yield scenario
    scenario.close()


def test_full_lifecycle(s: Scenario) -> None:
    api, pub, (t1, t2, t3) = s.api, s.publisher, s.trainers
    assert s.job["state"] == "draft"
    assert s.job["publisher"] == s.name(pub)
    assert s.job["aggregator_agreement_public"] == b64e(pub.public().agreement_public)
    assert api.ok(s.act(pub, "open"))["state"] == "open"
    for trainer in (t1, t2, t3):
        assert s.name(trainer) in {m["trainer"] for m in api.ok(s.join(trainer))["members"]}
    job = api.ok(s.admit(t1, t2, rejections=(t3,)))
    assert {m["trainer"]: m["state"] for m in job["members"]} == {
        s.name(t1): "admitted",
        s.name(t2): "admitted",
        s.name(t3): "rejected",
    }
    assert api.ok(api.get(t1, f"{s.path}/key"))["wrapped_key"] == WRAPPED_KEY
    job = api.ok(s.act(pub, "start"))
    assert (job["state"], job["current_round"]) == ("training", 1)
    first = s.current_round()
    assert first["model"] == s.initial_model
    assert first["deadline"] == first["opened_at"] + 60.0
    for number in (1, 2):
        assert api.ok(s.submit(t1, number))["state"] == "collecting"
        assert api.ok(s.submit(t2, number))["state"] == "aggregating"
        updates = api.ok(api.get(pub, f"{s.path}/rounds/{number}/updates"))
        assert {u["trainer"] for u in updates} == {s.name(t1), s.name(t2)}
        job = api.ok(s.publish(number, [t1, t2]))
    assert job["state"] == "completed"
    assert job["rounds_completed"] == 2
    rounds = api.ok(api.get(t3, f"{s.path}/rounds"))
    assert [r["state"] for r in rounds] == ["closed", "closed"]
    assert rounds[1]["model"] == rounds[0]["result_model"]
    assert job["final_model"] == rounds[1]["result_model"]
    assert rounds[0]["metrics"]["accuracy"] == 0.9
    assert {m["trainer"]: m["rounds_contributed"] for m in job["members"]}[s.name(t1)] == 2
    summary = api.ok(api.get(t3, f"/v1/jobs?state=completed&publisher={s.name(pub)}"))
    assert [(j["job_id"], j["trainers_admitted"]) for j in summary] == [(s.job_id, 2)]
    assert api.ok(api.get(t3, "/v1/jobs?state=open")) == []


def test_no_current_round_before_start(s: Scenario) -> None:
    response = s.api.get(s.publisher, f"{s.path}/rounds/current")
    assert_problem(response, 404, "not-found")
    assert s.api.ok(s.api.get(s.publisher, f"{s.path}/rounds")) == []


def test_update_refusals_leave_the_round_unchanged(s: Scenario) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    s.start_with(2)
    refused(s, lambda: s.submit(t3, 1), 403, "forbidden")  # never admitted
    refused(s, lambda: s.submit(s.publisher, 1), 403, "forbidden")
    refused(s, lambda: s.submit(t1, 2), 409, "conflict")  # not the current round
    refused(s, lambda: s.submit(t1, 1, attempt=1), 409, "conflict")  # wrong attempt
    missing = "0" * 64
    problem = refused(s, lambda: s.submit(t1, 1, update=missing), 422, "invalid-input")
    assert problem["errors"] == {"update": "blob not found"}
    api.ok(s.submit(t1, 1))
    problem = refused(s, lambda: s.submit(t1, 1), 409, "conflict")
    assert "already submitted" in str(problem["detail"])
    assert s.current_round()["updates_received"] == 1
    api.ok(s.submit(t2, 1))
    refused(s, lambda: s.submit(t3, 1), 403, "forbidden")


def test_result_refusals(s: Scenario) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    s.start_with(3)
    api.ok(s.submit(t1, 1))
    refused(s, lambda: s.publish(1, [t1]), 409, "illegal-transition")  # still collecting
    api.ok(s.submit(t2, 1))
    api.ok(s.submit(t3, 1))
    refused(s, lambda: s.publish(1, []), 422, "invalid-input")
    stranger = Identity.generate()
    api.register(stranger)
    refused(s, lambda: s.publish(1, [t1, stranger]), 422, "invalid-input")
    refused(s, lambda: s.publish(1, [t1], attempt=1), 409, "conflict")
    refused(s, lambda: s.publish(2, [t1]), 409, "conflict")
    refused(s, lambda: s.publish(1, [t1], model="0" * 64), 422, "invalid-input")
    api.ok(s.publish(1, [t1, t3]))
    refused(s, lambda: s.publish(1, [t1]), 409, "conflict")  # round 1 is over


def test_updates_list_shows_the_current_attempt_only(s: Scenario, clock: FakeClock) -> None:
    api, (t1, t2, _) = s.api, s.trainers
    s.start_with(2)
    api.ok(s.submit(t1, 1))
    clock.advance(61)  # 1 < 2 updates: retry
    assert api.ok(api.get(s.publisher, f"{s.path}/rounds/1/updates")) == []
    api.ok(s.submit(t2, 1, attempt=1))
    updates = api.ok(api.get(s.publisher, f"{s.path}/rounds/1/updates"))
    assert [u["trainer"] for u in updates] == [s.name(t2)]
    assert_problem(api.get(s.publisher, f"{s.path}/rounds/9/updates"), 404, "not-found")


def test_deadline_closes_the_round_with_what_arrived(s: Scenario, clock: FakeClock) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    s.start_with(3)
    api.ok(s.submit(t1, 1))
    api.ok(s.submit(t2, 1))
    clock.advance(60)
    assert s.current_round()["state"] == "collecting"  # the deadline itself is in time
    clock.advance(1)
    late = s.submit(t3, 1)
    assert_problem(late, 409, "conflict")
    rnd = s.current_round()
    assert (rnd["state"], rnd["updates_received"]) == ("aggregating", 2)
    api.ok(s.publish(1, [t1, t2]))
    assert s.current_round()["number"] == 2


def test_shortfall_retries_then_fails(s: Scenario, clock: FakeClock) -> None:
    api, (t1, t2, _) = s.api, s.trainers
    s.start_with(2)
    api.ok(s.submit(t1, 1))
    clock.advance(61)
    retry = s.current_round()
    assert (retry["attempt"], retry["state"], retry["updates_received"]) == (1, "collecting", 0)
    assert retry["deadline"] == clock.now() + 60
    refused(s, lambda: s.submit(t2, 1, attempt=0), 409, "conflict")
    api.ok(s.submit(t2, 1, attempt=1))
    clock.advance(61)
    job = s.get_job()
    assert job["state"] == "failed"
    assert job["state_reason"] == (
        "round 1: 1 update(s) by the deadline, 2 needed, no retries left"
    )
    assert s.current_round()["state"] == "failed"
    refused(s, lambda: s.act(s.publisher, "cancel"), 409, "illegal-transition")


def test_the_ticker_applies_deadlines_without_requests(
    settings: CoordinatorSettings, clock: FakeClock, publisher: Identity, trainers: list[Identity]
) -> None:
    fast = settings.model_copy(update={"tick_interval_s": 0.02})
    with running(create_app(fast, clock=clock), clock) as api:
        s = Scenario(api, fast.database_url, publisher, trainers)
        s.start_with(2)

        def wait_for(predicate_state: str, attempt: int) -> dict[str, object]:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stored = s.stored()
                [job], [rnd] = stored["jobs"], stored["rounds"]
                if (job["state"], rnd["attempt"]) == (predicate_state, attempt):
                    return job
                time.sleep(0.02)
            raise AssertionError(f"ticker did not reach {predicate_state}/{attempt}: {stored}")

        clock.advance(61)
        wait_for("training", 1)  # retried
        clock.advance(61)
        job = wait_for("failed", 1)
        assert "no retries left" in str(job["state_reason"])
        s.close()
