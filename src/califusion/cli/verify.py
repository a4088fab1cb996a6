"""``califusion job verify``: recompute securely aggregated rounds from their signed records.

Any member of a job (publisher or admitted trainer) can run it. For each round it prints who
contributed, who dropped, and either ``verified`` or every problem found — a tampered input, a
committed input left out of the sum, an altered sum, an unsigned transcript or log — and it
exits with status 1 if any round fails.
"""

from __future__ import annotations

from rich.table import Table

from califusion.agent.client import CoordinatorClient
from califusion.agent.secure_verify import RoundVerification, verify_round
from califusion.core.errors import InvalidInput
from califusion.protocol import RoundState


def rounds_to_verify(client: CoordinatorClient, job_id: str, number: int | None) -> list[int]:
    job = client.job(job_id)
    if job.spec.aggregation_mode == "publisher":
        raise InvalidInput(
            f"job {job_id} is aggregated by its publisher: there is no secure aggregation to verify"
        )
    if number is not None:
        return [number]
    finished = (RoundState.AGGREGATING, RoundState.CLOSED)
    return [r.number for r in client.rounds(job_id) if r.state in finished]


def verify_rounds(
    client: CoordinatorClient, job_id: str, numbers: list[int], expected_key: bytes | None
) -> tuple[Table, list[RoundVerification]]:
    table = Table("round", "attempt", "mode", "contributors", "dropped", "verdict")
    results = []
    for number in numbers:
        checked = verify_round(client, job_id, number, expected_key=expected_key)
        results.append(checked)
        verdict = (
            "[green]verified[/]: the result is the sum of the committed inputs"
            if checked.ok
            else "\n".join(f"[red]{f.kind}[/]: {f.detail}" for f in checked.audit.findings)
        )
        table.add_row(
            str(number),
            str(checked.attempt),
            checked.mode,
            str(len(checked.contributors)),
            str(len(checked.dropped)),
            verdict,
        )
    return table, results
