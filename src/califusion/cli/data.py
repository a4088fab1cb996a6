"""`califusion data …`: make simulation data and check local files against a job's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import typer

from califusion.cli.common import console, friendly_errors
from califusion.core.errors import InvalidInput
from califusion.ml.data import load_dataset, write_csv, write_npz, write_parquet
from califusion.ml.partition import synthetic as synthetic_devices
from califusion.ml.partition import train_test_split_per_device
from califusion.ml.spec import DataSchema, load_spec_file
from califusion.protocol import JobSpec

app = typer.Typer(help="Simulation data and schema checks.", no_args_is_help=True)

_WRITERS = {"csv": write_csv, "parquet": write_parquet, "npz": write_npz}


@app.command()
@friendly_errors
def synthetic(
    out: Annotated[Path, typer.Option(help="Folder to write into (must not exist).")],
    devices: Annotated[int, typer.Option(min=1, max=1000)] = 3,
    alpha: Annotated[float, typer.Option(min=0.0)] = 1.0,
    beta: Annotated[float, typer.Option(min=0.0)] = 1.0,
    seed: int = 0,
    fmt: Annotated[Literal["csv", "parquet", "npz"], typer.Option("--format")] = "csv",
    rounds: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """FedProx Synthetic(α, β) devices: one file per trainer, a validation set, a job spec."""
    from califusion.cli.demo import demo_spec  # noqa: PLC0415 - the demo's spec is the example

    if out.exists():
        raise InvalidInput(f"{out} exists; choose a new folder")
    out.mkdir(parents=True)
    spec = demo_spec(trainers=devices, rounds=rounds, epochs=5).model_copy(
        update={"title": f"Synthetic({alpha:g},{beta:g}) classifier"}
    )
    train, test = train_test_split_per_device(
        synthetic_devices(alpha, beta, num_devices=devices, seed=seed), test_fraction=0.1, seed=seed
    )
    for i, (x, y) in enumerate(train):
        _WRITERS[fmt](out / f"trainer-{i:02d}.{fmt}", x, y, spec.data_schema)
    write_npz(
        out / "validation.npz",
        np.concatenate([x for x, _ in test]),
        np.concatenate([y for _, y in test]),
        spec.data_schema,
    )
    (out / "job.json").write_text(spec.model_dump_json(indent=2), encoding="utf-8")
    console.print(
        f"wrote {devices} trainer files, validation.npz and job.json to {out} "
        f"({sum(len(y) for _, y in train)} training rows)"
    )


@app.command()
@friendly_errors
def check(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet or NPZ file.")],
    spec: Annotated[Path, typer.Option(help="Job spec (.json/.toml) whose schema to check.")],
) -> None:
    """Check a local data file against a job's data schema; errors name the row and column."""
    schema: DataSchema = load_spec_file(JobSpec, spec).data_schema
    dataset = load_dataset(data, schema)
    console.print(f"{data}: {dataset.num_samples} rows match the schema")
