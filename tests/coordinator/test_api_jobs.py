"""Jobs over HTTP: every refusal, each leaving the stored job untouched."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from califusion.coordinator.lifecycle import JobAction
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import HEADER_PRINCIPAL, sign_request

from .factories import spec_json
from .harness import SignedClient
from .scenario import WRAPPED_KEY, Scenario, assert_problem, refused

UNKNOWN_JOB = "/v1/jobs/job-" + "f" * 32


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these are HTTP-level refusals over the services that test_services and
    test_api_rounds run on both backends."""
    return f"sqlite:///{tmp_path / 'coordinator.db'}"


@pytest.fixture
def s(
    api: SignedClient, database_url: str, publisher: Identity, trainers: list[Identity]
) -> Iterator[Scenario]:
    scenario = Scenario(api, database_url, publisher, trainers)
    yield scenario
    scenario.close()


def test_wrapped_key_only_for_admitted_trainers(s: Scenario) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    api.ok(s.act(s.publisher, "open"))
    api.ok(s.join(t1))
    api.ok(s.join(t2))
    api.ok(s.admit(t1))
    assert api.ok(api.get(t1, f"{s.path}/key")) == {"job_id": s.job_id, "wrapped_key": WRAPPED_KEY}
    for other in (t2, t3, s.publisher):
        refused(s, partial(api.get, other, f"{s.path}/key"), 403, "forbidden")


@pytest.mark.parametrize("action", ["open", "start", "cancel"])
def test_only_the_publisher_moves_the_job(s: Scenario, action: str) -> None:
    trainer = s.trainers[0]
    refused(s, lambda: s.act(trainer, action), 403, "forbidden")


def test_trainer_cannot_admit_or_list_updates_or_publish(s: Scenario) -> None:
    api, (t1, t2, _) = s.api, s.trainers
    s.start_with(2)
    api.ok(s.submit(t1, 1))
    api.ok(s.submit(t2, 1))
    body = {"admissions": [{"trainer": s.name(t1), "wrapped_key": "AAAA"}]}
    refused(s, lambda: api.post(t1, f"{s.path}/admissions", body), 403, "forbidden")
    refused(s, lambda: api.get(t1, f"{s.path}/rounds/1/updates"), 403, "forbidden")
    model = api.put_blob(t1, b"poisoned model")
    refused(s, lambda: s.publish(1, [t1], model=model, caller=t1), 403, "forbidden")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", "/open"),
        ("POST", "/start"),
        ("POST", "/cancel"),
        ("GET", "/rounds"),
        ("GET", "/rounds/current"),
        ("GET", "/key"),
    ],
)
def test_unknown_job_is_404(s: Scenario, method: str, suffix: str) -> None:
    response = s.api.request(s.publisher, method, UNKNOWN_JOB + suffix)
    assert_problem(response, 404, "not-found")


def test_unknown_job_join_is_404(s: Scenario) -> None:
    trainer = s.trainers[0]
    response = s.api.post(trainer, f"{UNKNOWN_JOB}/join", {"declared_samples": 5})
    assert_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    ("setup", "action", "from_state"),
    [
        ([], "start", "draft"),
        (["open"], "open", "open"),
        (["cancel"], "cancel", "cancelled"),
        (["cancel"], "open", "cancelled"),
    ],
)
def test_illegal_transition_is_409_naming_the_states(
    s: Scenario, setup: list[str], action: str, from_state: str
) -> None:
    for step in setup:
        s.api.ok(s.act(s.publisher, step))
    body = refused(s, lambda: s.act(s.publisher, action), 409, "illegal-transition")
    target = {"open": "open", "start": "training", "cancel": "cancelled"}[action]
    assert body["errors"] == {"from_state": from_state, "to_state": target}
    assert JobAction(action).value in str(body["detail"])
    assert s.get_job()["state"] == from_state


def test_start_needs_enough_admitted_trainers(s: Scenario) -> None:
    api, (t1, t2, _) = s.api, s.trainers
    api.ok(s.act(s.publisher, "open"))
    api.ok(s.join(t1))
    api.ok(s.join(t2))
    api.ok(s.admit(t1))
    body = refused(s, lambda: s.act(s.publisher, "start"), 409, "conflict")
    assert "1 trainer(s) admitted, 2 needed" in str(body["detail"])
    assert body["errors"] == {"admitted": 1, "needed": 2}


def test_join_refusals(s: Scenario) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    refused(s, lambda: s.join(t1), 409, "conflict")  # still a draft
    api.ok(s.act(s.publisher, "open"))
    refused(s, lambda: s.join(s.publisher), 403, "forbidden")
    api.ok(s.join(t1))
    body = refused(s, lambda: s.join(t1), 409, "conflict")
    assert "already joined" in str(body["detail"])
    api.ok(s.join(t2))
    api.ok(s.join(t3))
    late = Identity.generate()
    api.register(late)
    body = refused(s, lambda: s.join(late), 409, "conflict")
    assert "job is full" in str(body["detail"])


def test_late_joiners_may_join_while_training(s: Scenario) -> None:
    s.start_with(2)
    job = s.api.ok(s.join(s.trainers[2]))
    assert {m["trainer"]: m["state"] for m in job["members"]}[s.name(s.trainers[2])] == "pending"


def test_admission_refusals(s: Scenario) -> None:
    api, (t1, t2, t3) = s.api, s.trainers
    api.ok(s.act(s.publisher, "open"))
    api.ok(s.join(t1))
    refused(s, lambda: s.admit(t1, t3), 404, "not-found")  # t3 never joined: nothing admitted
    api.ok(s.admit(t1))
    refused(s, lambda: s.admit(t1), 409, "illegal-transition")  # already admitted
    api.ok(s.join(t2))
    twice = {
        "admissions": [{"trainer": s.name(t2), "wrapped_key": "AAAA"}],
        "rejections": [s.name(t2)],
    }
    refused(s, lambda: api.post(s.publisher, f"{s.path}/admissions", twice), 422, "invalid-input")


def test_wrapped_key_size_is_limited(s: Scenario, settings: CoordinatorSettings) -> None:
    api, t1 = s.api, s.trainers[0]
    api.ok(s.act(s.publisher, "open"))
    api.ok(s.join(t1))
    big = b64e(bytes(settings.max_wrapped_key_bytes + 1))
    body = {"admissions": [{"trainer": s.name(t1), "wrapped_key": big}]}
    admissions = f"{s.path}/admissions"
    refused(s, lambda: api.post(s.publisher, admissions, body), 413, "payload-too-large")


def test_malformed_spec_is_422_naming_the_fields(s: Scenario) -> None:
    bad = spec_json(rounds=0, title="")
    del bad["data_schema"]
    body = {"spec": bad, "initial_model": s.initial_model}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", body), 422, "invalid-input")
    fields = set(problem["errors"])
    assert {"body.spec.rounds", "body.spec.title", "body.spec.data_schema"} <= fields
    incoherent = spec_json(min_trainers_per_round=5, trainers_wanted=3)
    body = {"spec": incoherent, "initial_model": s.initial_model}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", body), 422, "invalid-input")
    assert "min_trainers_per_round cannot exceed trainers_wanted" in str(problem["detail"])
    assert len(s.api.ok(s.api.get(s.publisher, "/v1/jobs"))) == 1


def test_malformed_json_and_unknown_fields_are_422(s: Scenario) -> None:
    broken = s.api.request(
        s.publisher,
        "POST",
        "/v1/jobs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_problem(broken, 422, "invalid-input")
    extra = {"spec": spec_json(), "initial_model": s.initial_model, "surprise": 1}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", extra), 422, "invalid-input")
    assert "body.surprise" in problem["errors"]


def test_initial_model_must_exist(s: Scenario) -> None:
    body = {"spec": spec_json(), "initial_model": "0" * 64}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", body), 422, "invalid-input")
    assert problem["errors"] == {"initial_model": "blob not found"}


def test_oversized_request_is_413(s: Scenario, settings: CoordinatorSettings) -> None:
    spec = spec_json(description="x" * 5000)
    n = settings.max_request_bytes // 20
    spec["data_schema"]["features"] = [{"name": f"feature_{i}"} for i in range(n)]
    spec["model"]["architecture"]["n_features"] = n
    body = {"spec": spec, "initial_model": s.initial_model}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", body), 413, "payload-too-large")
    assert problem["errors"] == {"limit": settings.max_request_bytes}
    assert len(s.api.ok(s.api.get(s.publisher, "/v1/jobs"))) == 1


@pytest.mark.parametrize("attack", ["unknown", "tampered", "replayed", "stale", "forged"])
def test_unauthenticated_moves_change_nothing(s: Scenario, attack: str) -> None:
    """Each authentication failure on a state-changing request leaves the job as it was."""
    api, pub, path = s.api, s.publisher, f"{s.path}/open"
    now = api.clock.now()
    if attack == "unknown":
        stranger = Identity.generate()
        send = partial(api.request, stranger, "POST", path)
        code = "unknown-principal"
    elif attack == "tampered":
        headers = sign_request(pub, "POST", f"{s.path}/cancel", b"", now)
        send = partial(api.http.request, "POST", path, content=b"", headers=headers)
        code = "bad-signature"
    elif attack == "replayed":
        api.ok(api.request(pub, "GET", s.path, nonce="e" * 32))
        send = partial(api.request, pub, "POST", path, nonce="e" * 32)
        code = "replayed-nonce"
    elif attack == "stale":
        send = partial(api.request, pub, "POST", path, signed_at=now - 120)
        code = "stale-request"
    else:
        headers = sign_request(s.trainers[0], "POST", path, b"", now)
        headers[HEADER_PRINCIPAL] = s.name(pub)
        send = partial(api.http.request, "POST", path, content=b"", headers=headers)
        code = "bad-signature"
    refused(s, send, 401, code)
    assert s.get_job()["state"] == "draft"


def test_the_job_list_pages_without_skipping_or_repeating(s: Scenario) -> None:
    api = s.api
    body = {"spec": spec_json(), "initial_model": s.initial_model}
    ids = [s.job_id] + [api.ok(api.post(s.publisher, "/v1/jobs", body))["job_id"] for _ in range(4)]
    seen: list[str] = []
    after = ""
    while True:
        query = f"?limit=2&after={after}" if after else "?limit=2"
        page = api.ok(api.get(s.publisher, f"/v1/jobs{query}"))
        seen += [job["job_id"] for job in page]
        if len(page) < 2:
            break
        after = page[-1]["job_id"]
    whole = [j["job_id"] for j in api.ok(api.get(s.publisher, "/v1/jobs"))]
    assert seen == whole  # the pages, in order, are the whole list: nothing skipped or repeated
    assert sorted(whole) == sorted(ids)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [("?limit=0", 422, "invalid-input"), ("?limit=201", 422, "invalid-input")],
)
def test_a_bad_page_is_refused(s: Scenario, query: str, status: int, code: str) -> None:
    assert_problem(s.api.get(s.publisher, f"/v1/jobs{query}"), status, code)


def test_paging_after_an_unknown_job_is_404(s: Scenario) -> None:
    assert_problem(s.api.get(s.publisher, "/v1/jobs?after=job-" + "0" * 32), 404, "not-found")


def test_a_secure_job_no_round_could_run_is_refused(s: Scenario) -> None:
    """Four trainers cannot keep a 20% corruption bound and a dropout: 422, nothing stored."""
    secure = {"max_corruption": 0.2, "max_dropout": 0.25}
    too_few = spec_json(
        aggregation_mode="secure",
        trainers_wanted=4,
        min_trainers_per_round=3,
        secure_aggregation=secure,
    )
    body = {"spec": too_few, "initial_model": s.initial_model}
    problem = assert_problem(s.api.post(s.publisher, "/v1/jobs", body), 422, "invalid-input")
    assert "cannot run with the 4 trainer(s)" in problem["detail"], problem
    assert "corrupt" in problem["detail"]
    assert len(s.api.ok(s.api.get(s.publisher, "/v1/jobs"))) == 1
    fewer = {"max_corruption": 0.1, "max_dropout": 0.1}  # 50 trainers: k = 26, t = 16
    enough = spec_json(aggregation_mode="secure", trainers_wanted=50, secure_aggregation=fewer)
    created = s.api.ok(
        s.api.post(s.publisher, "/v1/jobs", {"spec": enough, "initial_model": s.initial_model})
    )
    assert created["spec"]["secure_aggregation"]["max_corruption"] == 0.1
