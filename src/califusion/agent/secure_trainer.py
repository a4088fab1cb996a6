"""A trainer's round in secure or blind mode: train, then run the SecAgg+ client over HTTP.

Nobody sees this trainer's update. It submits ``(n_k / n_max) · (w_k − w_global)`` (see
``protocol.secagg`` for why that sum gives FedAvg), quantized and masked by the pure
:class:`~califusion.fl.secagg.SecAggClient`; in blind mode it also adds a pad derived from the
job key, so the coordinator's sum stays masked for anyone without the key.

Before trusting the coordinator's session it checks what it can recompute: the round id is the
one bound to (job, round, attempt), the parameters are the plan for this job spec and this many
participants (so a coordinator cannot lower the threshold or widen the quantizer), every
participant's principal is the hash of its signing key, its own weight is what it declared,
and the mode is the job's. The client then checks each peer's signed keys itself, signs the
one survivor set the coordinator announces, and refuses to unmask unless a majority of the
round signed that same set and the request is otherwise safe (``fl.secagg.consistency``).

The protocol is driven by polling: post a message, read the inbox (one small request per
``interval``), answer each new server message, until the session is done or aborted. A
trainer that stops answering is a dropout and the round goes on without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.agent.client import CoordinatorClient
from califusion.agent.contexts import model_context
from califusion.core.errors import CaliFusionError, InvalidInput, Unavailable
from califusion.crypto import symmetric
from califusion.crypto.encoding import b64d
from califusion.crypto.principal import Principal
from califusion.fl.secagg import (
    DuplicateMessage,
    MaskedInput,
    MaskedInputRef,
    SecAggClient,
    SecAggConfig,
    WireClientMessage,
    decode_server,
    encode_client,
    session_round_id,
)
from califusion.ml import flatten, from_safetensors, train_local
from califusion.protocol import JobInfo, RoundInfo, SecAggInbox, SecAggSession
from califusion.protocol.secagg import plan_arguments, session_start

if TYPE_CHECKING:
    from califusion.agent.trainer import TrainerAgent, TrainingReport

log = logging.getLogger(__name__)
_T = TypeVar("_T")
ENDED = ("done", "aborted")
_PATIENCE_S = 60.0  # how long past the round deadline an unreachable coordinator is waited for
_RETRY_S = 0.5


def check_session(session: SecAggSession, job: JobInfo, rnd: RoundInfo) -> SecAggConfig:
    """The session's parameters, if they are exactly what this job and round call for."""
    spec = job.spec
    n = len(session.participants)
    expected = SecAggConfig.plan(range(n), **plan_arguments(spec, n))
    problems = []
    if SecAggConfig.from_dict(session.config) != expected:
        problems.append("its parameters are not the plan for this job and participants")
    if b64d(session.round_id) != session_round_id(job.job_id, rnd.number, session.attempt):
        problems.append("its round id is not bound to this round")
    if session.mode != spec.aggregation_mode:
        problems.append(f"its mode {session.mode} is not the job's {spec.aggregation_mode}")
    if session.start != session_start(spec, rnd.opened_at):
        problems.append("its start time does not follow from the round's")
    for client, participant in enumerate(session.participants):
        key = b64d(participant.signing_public)
        if participant.client != client or (
            Principal.self_authenticating(key).to_text() != participant.principal
        ):
            problems.append(f"participant {client}'s key is not its principal's")
            break
    if problems:
        raise InvalidInput(
            "refusing the coordinator's secure-aggregation session: " + "; ".join(problems)
        )
    return expected


def secure_train_round(
    agent: TrainerAgent, job: JobInfo, rnd: RoundInfo, key: bytes, *, interval: float = 0.1
) -> TrainingReport:
    """Train and take part in the round's secure aggregation until its session ends."""
    from califusion.agent.trainer import TrainingReport  # noqa: PLC0415 - trainer imports us

    client = agent.client
    session = client.secagg_session(job.job_id, rnd.number)
    me = session.you
    if session.attempt != rnd.attempt or me is None or session.stage != "advertise-keys":
        log.info("not taking part in this round", extra={"round": rnd.number})
        return TrainingReport(job.job_id, rnd.number, rnd.attempt, 0, float("nan"), 0)
    config = check_session(session, job, rnd)
    declared = session.participants[me].declared_samples
    if declared != agent.data.num_samples:  # the public weight is what it declared on joining
        log.warning(
            "training on another number of samples than declared",
            extra={"declared": declared, "samples": agent.data.num_samples},
        )

    spec = job.spec.model
    sealed_model = client.get_blob(rnd.model)
    plain = symmetric.decrypt(key, sealed_model, model_context(rnd.number - 1))
    global_weights, _ = from_safetensors(plain, spec)
    rng = np.random.default_rng([agent.seed, rnd.number, rnd.attempt])
    result = train_local(
        spec,
        global_weights,
        agent.data.x,
        agent.data.y,
        epochs=agent.epochs_for_round(rnd.number),
        rng=rng,
    )
    n_max = max(p.declared_samples for p in session.participants)
    update = flatten(result.weights).astype(np.float64) - flatten(global_weights)
    update *= declared / n_max

    peers = {
        p.client: Ed25519PublicKey.from_public_bytes(b64d(p.signing_public))
        for p in session.participants
    }
    secagg = SecAggClient(
        config,
        b64d(session.round_id),
        me,
        identity=client.identity,
        peers=peers,
        update=update,
        pad_key=key if session.mode == "blind" else None,
    )
    _run_protocol(client, job.job_id, rnd, session.attempt, secagg, interval=interval)
    report = TrainingReport(
        job.job_id,
        rnd.number,
        rnd.attempt,
        result.num_samples,
        float(result.train_loss),
        result.epochs_done,
    )
    if agent.on_round is not None:
        agent.on_round(report)
    return report


def _run_protocol(
    client: CoordinatorClient,
    job_id: str,
    rnd: RoundInfo,
    attempt: int,
    secagg: SecAggClient,
    *,
    interval: float,
) -> None:
    """Answer server messages until the session ends or this trainer falls out of it.

    An unreachable coordinator (restarting, say) is waited for until the round's deadline has
    long passed: its state survives a restart, so the round carries on when it is back."""
    give_up = rnd.deadline + _PATIENCE_S

    def patiently(call: Callable[[], _T]) -> _T:
        while True:
            try:
                return call()
            except Unavailable:
                if time.time() > give_up:
                    raise
                time.sleep(_RETRY_S)

    def post(body: bytes) -> SecAggInbox:
        try:
            return client.secagg_post(job_id, rnd.number, attempt, body)
        except DuplicateMessage:  # an earlier try got through before the connection broke
            return client.secagg_inbox(job_id, rnd.number, attempt)

    def send(message: WireClientMessage | MaskedInput) -> SecAggInbox:
        if isinstance(message, MaskedInput):
            data = message.masked.tobytes()
            blob = patiently(lambda: client.put_blob(data)).digest
            message = MaskedInputRef.of(message, digest=secagg.commitment, blob=bytes.fromhex(blob))
        body = encode_client(message)
        return patiently(lambda: post(body))

    handled = 0
    try:
        inbox = send(secagg.start())
        while inbox.attempt == attempt and inbox.stage not in ENDED:
            fresh = inbox.messages[handled:]
            for raw in fresh:
                handled += 1
                for reply in secagg.handle(decode_server(b64d(raw))):
                    inbox = send(reply)
            if not fresh:
                time.sleep(interval)
                inbox = patiently(lambda: client.secagg_inbox(job_id, rnd.number, attempt))
    except CaliFusionError as error:
        # Late, refused or aborted: this trainer is a dropout of this attempt, nothing more.
        log.warning("left secure aggregation", extra={"round": rnd.number, "why": str(error)})
        return
    if inbox.stage == "aborted":
        log.warning(
            "secure aggregation aborted", extra={"round": rnd.number, "why": inbox.abort_reason}
        )
