"""A signed HTTP client for the coordinator's API.

Every request is signed with the caller's Ed25519 identity (``crypto.signing``); every problem
response comes back as the same :class:`~califusion.core.errors.CaliFusionError` subclass the
coordinator raised. Reads and content-addressed uploads are retried on transport errors, since
repeating them cannot change state; other writes are not retried blindly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from califusion.core.clock import Clock, SystemClock
from califusion.core.errors import CaliFusionError, Unavailable, error_from_problem
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import sign_request
from califusion.protocol import (
    AdmitTrainers,
    BlobRef,
    CreateJob,
    JobInfo,
    JobSpec,
    JobState,
    JobSummary,
    JoinJob,
    PrincipalInfo,
    PublishResult,
    RegisterPrincipal,
    RoundInfo,
    SubmitUpdate,
    UpdateInfo,
    WrappedKey,
)
from califusion.protocol.access import AccessKey, GrantAccess, GrantInfo, ModelOffer, OfferModel
from califusion.protocol.secagg import (
    CoordinatorInfo,
    PostSecAggMessage,
    SecAggEvidence,
    SecAggInbox,
    SecAggSession,
)

M = TypeVar("M", bound=BaseModel)
_RETRIES = 4


class SignedClient:
    """One identity's signed connection to one HTTP service; ``with`` closes it.

    The coordinator, ledger and escrow clients are this plus their typed methods.
    """

    _service = "service"  # how errors name the peer

    def __init__(
        self,
        base_url: str,
        identity: Identity,
        *,
        clock: Clock | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.identity = identity
        self._clock = clock or SystemClock()
        self._headers = headers
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _signed(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        attempts: int = 1,
    ) -> httpx.Response:
        return send_signed(
            self._http,
            self.identity,
            self._clock,
            method,
            path,
            body=body,
            content_type=content_type,
            params=params,
            headers=self._headers,
            attempts=attempts,
            service=self._service,
        )


class CoordinatorClient(SignedClient):
    """Typed, signed access to one coordinator on behalf of one identity."""

    _service = "coordinator"

    # ---- transport ------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        retry: bool = False,
    ) -> httpx.Response:
        return self._signed(
            method,
            path,
            body=body,
            content_type=content_type,
            params=params,
            attempts=_RETRIES if retry else 1,
        )

    def _json(
        self,
        method: str,
        path: str,
        payload: BaseModel | None = None,
        *,
        params: dict[str, str] | None = None,
    ) -> Any:
        body = payload.model_dump_json().encode() if payload is not None else b""
        response = self._send(method, path, body=body, params=params, retry=method == "GET")
        return response.json()

    def _get(self, model: type[M], path: str) -> M:
        return model.model_validate(self._json("GET", path))

    # ---- principals and blobs -------------------------------------------------------------

    def register(self, display_name: str = "") -> PrincipalInfo:
        public = self.identity.public()
        payload = RegisterPrincipal(
            signing_public=b64e(public.signing_public),
            agreement_public=b64e(public.agreement_public),
            display_name=display_name,
        )
        return PrincipalInfo.model_validate(self._json("POST", "/v1/principals", payload))

    def principal(self, principal: str) -> PrincipalInfo:
        return self._get(PrincipalInfo, f"/v1/principals/{principal}")

    def put_blob(self, data: bytes) -> BlobRef:
        response = self._send(
            "PUT", "/v1/blobs", body=data, content_type="application/octet-stream", retry=True
        )
        return BlobRef.model_validate(response.json())

    def get_blob(self, digest: str) -> bytes:
        return self._send("GET", f"/v1/blobs/{digest}", retry=True).content

    # ---- jobs -----------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, initial_model: str) -> JobInfo:
        payload = CreateJob(spec=spec, initial_model=initial_model)
        return JobInfo.model_validate(self._json("POST", "/v1/jobs", payload))

    def list_jobs(
        self, *, state: JobState | None = None, publisher: str | None = None, page: int = 200
    ) -> list[JobSummary]:
        """Every job that matches, oldest first, read ``page`` at a time."""
        params = {k: str(v) for k, v in (("state", state), ("publisher", publisher)) if v}
        params["limit"] = str(page)
        adapter = TypeAdapter(list[JobSummary])
        found: list[JobSummary] = []
        while True:
            batch = adapter.validate_python(self._json("GET", "/v1/jobs", params=params))
            found.extend(batch)
            if len(batch) < page:
                return found
            params["after"] = batch[-1].job_id

    def job(self, job_id: str) -> JobInfo:
        return self._get(JobInfo, f"/v1/jobs/{job_id}")

    def transition(self, job_id: str, action: str) -> JobInfo:
        """``action`` is one of open, start, cancel."""
        return JobInfo.model_validate(self._json("POST", f"/v1/jobs/{job_id}/{action}"))

    def join(self, job_id: str, declared_samples: int) -> JobInfo:
        payload = JoinJob(declared_samples=declared_samples)
        return JobInfo.model_validate(self._json("POST", f"/v1/jobs/{job_id}/join", payload))

    def admit(self, job_id: str, decisions: AdmitTrainers) -> JobInfo:
        path = f"/v1/jobs/{job_id}/admissions"
        return JobInfo.model_validate(self._json("POST", path, decisions))

    def wrapped_key(self, job_id: str) -> WrappedKey:
        return self._get(WrappedKey, f"/v1/jobs/{job_id}/key")

    def rounds(self, job_id: str) -> list[RoundInfo]:
        adapter = TypeAdapter(list[RoundInfo])
        return adapter.validate_python(self._json("GET", f"/v1/jobs/{job_id}/rounds"))

    def current_round(self, job_id: str) -> RoundInfo:
        return self._get(RoundInfo, f"/v1/jobs/{job_id}/rounds/current")

    def submit_update(self, job_id: str, number: int, attempt: int, digest: str) -> None:
        payload = SubmitUpdate(attempt=attempt, update=digest)
        self._json("POST", f"/v1/jobs/{job_id}/rounds/{number}/updates", payload)

    def updates(self, job_id: str, number: int) -> list[UpdateInfo]:
        adapter = TypeAdapter(list[UpdateInfo])
        path = f"/v1/jobs/{job_id}/rounds/{number}/updates"
        return adapter.validate_python(self._json("GET", path))

    def publish_result(self, job_id: str, number: int, result: PublishResult) -> JobInfo:
        path = f"/v1/jobs/{job_id}/rounds/{number}/result"
        return JobInfo.model_validate(self._json("POST", path, result))

    # ---- model access ---------------------------------------------------------------------

    def offer_model(self, job_id: str, model: str) -> ModelOffer:
        path = f"/v1/jobs/{job_id}/access/offer"
        return ModelOffer.model_validate(self._json("POST", path, OfferModel(model=model)))

    def model_offer(self, job_id: str) -> ModelOffer:
        return self._get(ModelOffer, f"/v1/jobs/{job_id}/access/offer")

    def grant_access(self, job_id: str, grants: GrantAccess) -> list[GrantInfo]:
        adapter = TypeAdapter(list[GrantInfo])
        return adapter.validate_python(
            self._json("POST", f"/v1/jobs/{job_id}/access/grants", grants)
        )

    def access_grants(self, job_id: str) -> list[GrantInfo]:
        adapter = TypeAdapter(list[GrantInfo])
        return adapter.validate_python(self._json("GET", f"/v1/jobs/{job_id}/access/grants"))

    def access_key(self, job_id: str) -> AccessKey:
        return self._get(AccessKey, f"/v1/jobs/{job_id}/access/key")

    # ---- secure aggregation ---------------------------------------------------------------

    def coordinator_info(self) -> CoordinatorInfo:
        return self._get(CoordinatorInfo, "/v1/coordinator")

    def secagg_session(self, job_id: str, number: int) -> SecAggSession:
        return self._get(SecAggSession, f"/v1/jobs/{job_id}/rounds/{number}/secagg")

    def secagg_post(self, job_id: str, number: int, attempt: int, message: bytes) -> SecAggInbox:
        """Post one protocol message (``fl.secagg.wire`` bytes); the caller's inbox after it."""
        path = f"/v1/jobs/{job_id}/rounds/{number}/secagg/messages"
        payload = PostSecAggMessage(attempt=attempt, message=b64e(message))
        return SecAggInbox.model_validate(self._json("POST", path, payload))

    def secagg_inbox(self, job_id: str, number: int, attempt: int) -> SecAggInbox:
        path = f"/v1/jobs/{job_id}/rounds/{number}/secagg/inbox"
        return SecAggInbox.model_validate(self._json("GET", path, params={"attempt": str(attempt)}))

    def secagg_evidence(self, job_id: str, number: int) -> SecAggEvidence:
        return self._get(SecAggEvidence, f"/v1/jobs/{job_id}/rounds/{number}/secagg/evidence")


def send_signed(
    http: httpx.Client,
    identity: Identity,
    clock: Clock,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    content_type: str = "application/json",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    attempts: int = 1,
    service: str = "service",
) -> httpx.Response:
    """Sign and send one request (a fresh nonce per try); a problem response raises its error.

    Transport errors are retried ``attempts`` times with backoff: only for requests that are
    safe to repeat (reads, content-addressed uploads).
    """
    for attempt in range(attempts):
        request = http.build_request(method, path, content=body, params=params, headers=headers)
        raw_path = request.url.raw_path.decode("ascii")
        request.headers.update(sign_request(identity, method, raw_path, body, clock.now()))
        if body:
            request.headers["content-type"] = content_type
        try:
            response = http.send(request)
        except httpx.TransportError as exc:
            if attempt + 1 == attempts:
                raise Unavailable(
                    f"{service} at {http.base_url} is unreachable ({exc}); is it running?"
                ) from exc
            time.sleep(0.2 * 2**attempt)
            continue
        if response.status_code >= 400:
            raise error_of_response(response)
        return response
    raise AssertionError("unreachable")


def error_of_response(response: httpx.Response) -> CaliFusionError:
    """The error a peer's problem response stands for."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    if "detail" not in body:
        body["detail"] = f"HTTP {response.status_code} from {response.request.url.path}"
    return error_from_problem(response.status_code, body)


def poll(interval: float, timeout: float | None = None) -> Iterator[float]:
    """Yield elapsed seconds every ``interval`` until ``timeout`` (forever if None)."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if timeout is not None and elapsed > timeout:
            return
        yield elapsed
        time.sleep(interval)
