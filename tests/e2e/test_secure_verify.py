"""``califusion job verify`` catches a lying coordinator; a crashed coordinator carries on.

A secure job runs over HTTP once per module. Each tamper test then plays a coordinator that
lies in one way, by editing its database (and, where the lie needs it, re-signing the
transcript with the coordinator's own key), runs the real command and restores what it
changed. The restart test kills the coordinator in the middle of a round and starts it again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from califusion.agent.secure_verify import verify_round
from califusion.cli.localserver import CoordinatorProcess
from califusion.cli.main import app
from califusion.coordinator.identity import load_or_create
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.fl.secagg import (
    MaskedInputRef,
    Transcript,
    decode_client,
    encode_client,
    sign_transcript,
    vector_digest,
)
from califusion.protocol import JobState

from .secure_jobs import SecureJob, run_secure_job

pytestmark = pytest.mark.e2e
PASSPHRASE_ENV = "CF_TEST_VERIFY_PASSPHRASE"


@dataclasses.dataclass
class World:
    coordinator: CoordinatorProcess
    run: SecureJob
    keystore: Path
    home: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("verify")
    publisher = Identity.generate()
    keystore = home / "publisher.json"
    save_keystore(keystore, publisher, "correct horse", name="publisher")
    with (
        CoordinatorProcess.in_folder(home) as coordinator,
        ExitStack() as stack,
    ):
        run = run_secure_job(
            coordinator.url,
            home,
            stack,
            mode="blind",
            trainers=4,
            rounds=1,
            min_trainers=3,
            deadline=14.0,
            publisher_identity=publisher,
        )
        assert run.final.state == JobState.COMPLETED, run.final.state_reason
        yield World(coordinator, run, keystore, home)


def _verify(world: World) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        [
            "job",
            "verify",
            world.run.job.job_id,
            "--coordinator",
            world.coordinator.url,
            "--keystore",
            str(world.keystore),
            "--passphrase-env",
            PASSPHRASE_ENV,
        ],
        env={PASSPHRASE_ENV: "correct horse", "COLUMNS": "400"},
    )
    return result.exit_code, result.output


@contextmanager
def _database(world: World) -> Iterator[sa.Connection]:
    engine = sa.create_engine(world.coordinator.database_url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


@contextmanager
def _tampered(world: World, table: str, column: str, where: str, value: object) -> Iterator[None]:
    """One column of one row set to ``value`` for the duration; put back afterwards."""
    select = f"SELECT {column} FROM {table} WHERE {where}"
    update = f"UPDATE {table} SET {column} = :v WHERE {where}"
    with _database(world) as connection:
        original = connection.execute(sa.text(select)).scalar_one()
        connection.execute(sa.text(update), {"v": value})
    try:
        yield
    finally:
        with _database(world) as connection:
            connection.execute(sa.text(update), {"v": original})


def _one(world: World, query: str) -> Any:
    with _database(world) as connection:
        return connection.execute(sa.text(query)).scalar_one()


def _transcript(world: World) -> Transcript:
    return Transcript.from_json(str(_one(world, "SELECT transcript FROM secagg_sessions")))


@contextmanager
def _resigned(world: World, transcript: Transcript) -> Iterator[None]:
    """What a lying coordinator can do: sign whatever transcript it likes with its own key."""
    key = load_or_create(world.home / "coordinator-identity.pem")
    signature = sign_transcript(transcript, key)
    with (
        _tampered(world, "secagg_sessions", "transcript", "1 = 1", transcript.canonical().decode()),
        _tampered(world, "secagg_sessions", "transcript_signature", "1 = 1", signature),
    ):
        yield


def _changed_blob(world: World, address: str) -> tuple[str, bytes]:
    """Upload a copy of the vector at blob ``address`` with one word changed: its address
    and its commitment digest."""
    client = world.run.publisher.client
    vector = np.frombuffer(client.get_blob(address), np.uint32).copy()
    vector[0] += 1
    return client.put_blob(vector.tobytes()).digest, vector_digest(vector, "blake3")


def test_an_honest_round_verifies(world: World) -> None:
    code, output = _verify(world)
    assert code == 0, output
    assert "verified" in output
    checked = verify_round(world.run.publisher.client, world.run.job.job_id, 1)
    assert checked.ok and len(checked.contributors) == 4


def test_a_swapped_masked_input_is_reported(world: World) -> None:
    where = "kind = 'masked-input' AND sender = 0"
    ref = decode_client(bytes(_one(world, f"SELECT body FROM secagg_events WHERE {where}")))
    assert isinstance(ref, MaskedInputRef)
    address, digest = _changed_blob(world, ref.blob.hex())
    # another vector under the committed digest, then with its own digest
    swapped = dataclasses.replace(ref, blob=bytes.fromhex(address))
    forged = dataclasses.replace(swapped, digest=digest)
    for lie in (swapped, forged):
        with _tampered(world, "secagg_events", "body", where, encode_client(lie)):
            code, output = _verify(world)
        assert code == 1, output
        assert "tampered-input" in output
    # a coordinator that also rewrites the commitment cannot sign it as the trainer
    transcript = _transcript(world)
    commitments = tuple(
        dataclasses.replace(c, digest=forged.digest) if c.client == 0 else c
        for c in transcript.commitments
    )
    with (
        _tampered(world, "secagg_events", "body", where, encode_client(forged)),
        _resigned(world, dataclasses.replace(transcript, commitments=commitments)),
    ):
        code, output = _verify(world)
    assert code == 1 and "commitment is not signed by it" in output, output


def test_a_dropped_committed_input_is_reported(world: World) -> None:
    transcript = _transcript(world)
    victim = min(transcript.contributors)
    lie = dataclasses.replace(
        transcript,
        contributors=transcript.contributors - {victim},
        dropped=transcript.dropped | {victim},
    )
    with _resigned(world, lie):
        code, output = _verify(world)
    assert code == 1, output
    assert "dropped-committed-input" in output
    assert transcript.labels[victim] in output


def test_an_altered_sum_is_reported(world: World) -> None:
    transcript = _transcript(world)
    served = world.run.publisher.client.secagg_session(world.run.job.job_id, 1).result
    assert served is not None
    altered, digest = _changed_blob(world, served)
    with _tampered(world, "secagg_sessions", "result_digest", "1 = 1", altered):
        code, output = _verify(world)
    assert code == 1, output
    assert "altered-sum" in output and "sum served" in output
    # and signed as such by a lying coordinator
    lie = dataclasses.replace(transcript, result_digest=digest)
    with (
        _tampered(world, "secagg_sessions", "result_digest", "1 = 1", altered),
        _resigned(world, lie),
    ):
        code, output = _verify(world)
    assert code == 1, output
    assert "transcript's sum is not the sum" in output
    assert _verify(world)[0] == 0  # everything put back


def test_a_swapped_survivor_set_is_reported(world: World) -> None:
    """A coordinator that claims the clients signed another survivor set than the one the
    round was unmasked by cannot produce their signatures over it."""
    transcript = _transcript(world)
    signed = transcript.consistency
    assert signed is not None
    assert len(signed.signatures) >= transcript.config.consistency_threshold
    victim = max(signed.survivors)
    swapped = dataclasses.replace(
        signed, survivors=signed.survivors - {victim}, dropped=signed.dropped | {victim}
    )
    with _resigned(world, dataclasses.replace(transcript, consistency=swapped)):
        code, output = _verify(world)
    assert code == 1, output
    assert "survivor-set" in output and "unmasked by another survivor set" in output
    unsigned = dataclasses.replace(transcript, consistency=None)
    with _resigned(world, unsigned):
        code, output = _verify(world)
    assert code == 1 and "no signed survivor set" in output, output
    assert _verify(world)[0] == 0  # everything put back
