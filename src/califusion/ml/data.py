"""Load a trainer's local data file and check it against the job's :class:`DataSchema`.

The extension chooses the format:

- ``.csv``: UTF-8 text, a header row of column names, then one sample per row. Blank lines are
  skipped; every other row must have as many fields as the header.
- ``.parquet``: numeric (integer or floating) columns; nulls count as missing values.
- ``.npz``: arrays ``x`` [n, d] and ``y`` [n]. Columns map by position (``x[:, j]`` is feature
  ``j`` of the schema), so ``d`` must equal the number of schema features.

CSV and Parquet columns are found by name, in any order; columns the schema does not name are
ignored. Every problem raises :class:`DataSchemaError`. For a bad value its message names the
file, the 1-based data row and the column (``data.csv: row 3, column "x2" (file line 4): ...``)
and its ``detail`` carries ``row`` and ``column`` (``None`` where they do not apply) and, for
CSV, the file ``line``. Of several bad values the first row is reported, and within it the first
column in schema order. Messages never quote a cell's value: data stays on the trainer's machine
even when an error is logged or forwarded.

Files over ``max_bytes`` are refused. NPZ archives are opened with ``allow_pickle=False`` and
their array headers are read first, so a stranger's file can neither unpickle objects nor
decompress into more than ``max_bytes``.
"""

from __future__ import annotations

import csv
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import ArrayLike, NDArray

from califusion.core.errors import DataSchemaError
from califusion.ml.spec import DataSchema

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Dataset",
    "load_dataset",
    "write_csv",
    "write_npz",
    "write_parquet",
]

DEFAULT_MAX_BYTES = 2 * 1024**3
_SUFFIXES = (".csv", ".parquet", ".npz")
# What counts as a number in a CSV cell (after trimming whitespace): ASCII decimal, optional
# exponent, or inf/infinity/nan (those then fail the finiteness check with a clear message).
_NUMBER = r"(?i)^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)$"
_F32_MAX = float(np.finfo(np.float32).max)
# Integer bounds as float64, inclusive; 2**63 - 1 is not a float64, so use the largest one below.
_INT_BOUNDS = {
    "int32": (-(2.0**31), 2.0**31 - 1),
    "int64": (-(2.0**63), float(np.nextafter(2.0**63, 0.0))),
}


@dataclass(frozen=True)
class Dataset:
    """Validated samples.

    ``x`` is float32 [n, d] in schema feature order; ``y`` holds int64 class labels when the
    schema's label has ``n_classes`` (classification), else float32 targets (regression).
    """

    x: NDArray[np.float32]
    y: NDArray[np.int64] | NDArray[np.float32]

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class _Table:
    """The schema's columns as read (features, then label): values and cells with no number."""

    values: NDArray[np.float64]  # [n, d + 1]; missing or non-numeric cells hold 0
    missing: NDArray[np.bool_]  # empty CSV cell or Parquet null
    text: NDArray[np.bool_]  # CSV cell that is not a number
    line_of: Callable[[int], int] | None = None  # 0-based data row -> file line (CSV)


def _error(message: str, *, row: int | None = None, column: str | None = None) -> DataSchemaError:
    return DataSchemaError(message, row=row, column=column)


def load_dataset(path: Path, schema: DataSchema, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Dataset:
    """Read ``path`` (.csv, .parquet or .npz) and check every value against ``schema``."""
    path = Path(path)
    src = path.name
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise _error(f"{src}: unsupported data file type {suffix!r}; use {', '.join(_SUFFIXES)}")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _error(f"{src}: file is {size} bytes, over the limit of {max_bytes} bytes")
        if suffix == ".csv":
            table = _read_csv(path, src, schema)
        elif suffix == ".parquet":
            table = _read_parquet(path, src, schema, max_bytes)
        else:
            table = _read_npz(path, src, schema, max_bytes)
    except OSError as exc:
        raise _error(f"{src}: cannot read data file ({exc.strerror or exc})") from exc
    return _check(src, schema, table)


def _require(src: str, wanted: list[str], present: list[str], what: str = "column") -> None:
    """Raise if a wanted column is missing (listing what the file has) or appears twice."""
    absent = [name for name in wanted if name not in present]
    if absent:
        has = ", ".join(f'"{name}"' for name in present[:50]) or "none"
        more = f" and {len(present) - 50} more" if len(present) > 50 else ""
        listing = ", ".join(f'"{name}"' for name in absent)
        message = f"{src}: missing {what} {listing}; the file has {what}s {has}{more}"
        raise DataSchemaError(message, row=None, column=absent[0], missing=absent)
    for name in wanted:
        if present.count(name) > 1:
            raise _error(f'{src}: {what} "{name}" appears more than once', column=name)


def _schema_names(schema: DataSchema) -> list[str]:
    return [c.name for c in schema.features] + [schema.label.name]


# --- CSV ------------------------------------------------------------------------------------


def _read_csv(path: Path, src: str, schema: DataSchema) -> _Table:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, strict=True)
            try:
                records = list(reader)
            except csv.Error as exc:
                message = f"{src}: not valid CSV at file line {reader.line_num}: {exc}"
                raise DataSchemaError(message, row=None, column=None, line=reader.line_num) from exc
    except UnicodeDecodeError as exc:
        raise _error(f"{src}: not UTF-8 text (byte {exc.start}): {exc.reason}") from exc
    if not records or not records[0]:
        raise _error(f"{src}: no header row; the first line must name the columns")
    header = [name.strip() for name in records[0]]
    wanted = _schema_names(schema)
    _require(src, wanted, header)
    data = [record for record in records[1:] if record]

    def line_of(row0: int) -> int:
        return _csv_line(path, row0)

    widths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    wrong = np.flatnonzero(widths != len(header))
    if wrong.size:
        row0 = int(wrong[0])
        got = int(widths[row0])
        column = header[got] if got < len(header) else None
        where = f'row {row0 + 1}, column "{column}"' if column else f"row {row0 + 1}"
        line = line_of(row0)
        message = f"{src}: {where} (file line {line}): {got} fields, the header has {len(header)}"
        raise DataSchemaError(message, row=row0 + 1, column=column, line=line)
    shape = (len(data), len(wanted))
    values = np.zeros(shape, dtype=np.float64)
    missing = np.zeros(shape, dtype=np.bool_)
    text = np.zeros(shape, dtype=np.bool_)
    for j, name in enumerate(wanted):
        cells = pa.array(list(map(itemgetter(header.index(name)), data)), type=pa.string())
        trimmed = pc.utf8_trim_whitespace(cells)
        empty = pc.equal(trimmed, "")
        number = pc.match_substring_regex(trimmed, _NUMBER)
        parsed = pc.cast(pc.if_else(number, trimmed, "0"), pa.float64())
        values[:, j] = np.asarray(parsed.to_numpy(zero_copy_only=False), dtype=np.float64)
        missing[:, j] = np.asarray(empty.to_numpy(zero_copy_only=False), dtype=np.bool_)
        text[:, j] = ~np.asarray(number.to_numpy(zero_copy_only=False), dtype=np.bool_)
    text &= ~missing
    return _Table(values, missing, text, line_of)


def _csv_line(path: Path, row0: int) -> int:
    """The file line on which data row ``row0`` starts (blank lines skipped). Error path only."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        seen = -1
        start = reader.line_num + 1
        for record in reader:
            if record:
                seen += 1
                if seen == row0:
                    break
            start = reader.line_num + 1
    return start


# --- Parquet --------------------------------------------------------------------------------


def _read_parquet(path: Path, src: str, schema: DataSchema, max_bytes: int) -> _Table:
    wanted = _schema_names(schema)
    shape = (0, len(wanted))
    try:
        file = pq.ParquetFile(path)
        arrow_schema = file.schema_arrow
        _require(src, wanted, list(arrow_schema.names))
        for name in wanted:
            kind = arrow_schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                message = (
                    f'{src}: column "{name}" has Parquet type {kind}; the schema needs numbers'
                )
                raise _error(message, column=name)
        meta, decoded = file.metadata, 0
        for g in range(meta.num_row_groups):
            chunks = map(meta.row_group(g).column, range(meta.num_columns))
            decoded += sum(c.total_uncompressed_size for c in chunks if c.path_in_schema in wanted)
        if decoded > max_bytes:
            raise _error(f"{src}: the columns decode to {decoded} bytes, over {max_bytes} bytes")
        table = file.read(columns=wanted)
        shape = (table.num_rows, len(wanted))
        values = np.zeros(shape, dtype=np.float64)
        missing = np.zeros(shape, dtype=np.bool_)
        for j, name in enumerate(wanted):
            column = table.column(name)
            missing[:, j] = np.asarray(pc.is_null(column).to_numpy(), dtype=np.bool_)
            filled = pc.fill_null(column, pa.scalar(0, type=column.type))
            values[:, j] = np.asarray(filled.to_numpy(), dtype=np.float64)
    except (pa.ArrowException, ValueError) as exc:
        raise _error(f"{src}: cannot read Parquet file: {exc}") from exc
    return _Table(values, missing, np.zeros(shape, dtype=np.bool_))


# --- NPZ ------------------------------------------------------------------------------------


def _npy_header(src: str, key: str, f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype[Any]]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise _error(f'{src}: array "{key}" uses unsupported .npy format version {version}')
    return tuple(shape), np.dtype(dtype)


def _read_npz(path: Path, src: str, schema: DataSchema, max_bytes: int) -> _Table:
    d = len(schema.features)
    shapes: dict[str, tuple[int, ...]] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            present = [m.removesuffix(".npy") for m in archive.namelist() if m.endswith(".npy")]
            _require(src, ["x", "y"], present, what="array")
            for key in ("x", "y"):
                with archive.open(f"{key}.npy") as f:
                    shapes[key], dtype = _npy_header(src, key, f)
                if dtype.hasobject:
                    raise _error(
                        f'{src}: array "{key}" holds Python objects; refused (no unpickling)'
                    )
                if dtype.kind not in "iuf":
                    raise _error(
                        f'{src}: array "{key}" has dtype {dtype}; the schema needs numbers'
                    )
                if math.prod(shapes[key]) * dtype.itemsize > max_bytes:
                    raise _error(f'{src}: array "{key}" would take over {max_bytes} bytes')
        if len(shapes["x"]) != 2 or shapes["x"][1] != d:
            message = f"one column per schema feature, in schema order; got {shapes['x']}"
            raise _error(f'{src}: array "x" must have shape [n, {d}], {message}')
        n = shapes["x"][0]
        if shapes["y"] != (n,):
            raise _error(f'{src}: array "y" has shape {shapes["y"]}; expected [{n}] to match "x"')
        with np.load(path, allow_pickle=False) as npz:
            values = np.empty((n, d + 1), dtype=np.float64)
            values[:, :d] = npz["x"]
            values[:, d] = npz["y"]
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise _error(f"{src}: not a readable NPZ archive: {exc}") from exc
    nothing = np.zeros(values.shape, dtype=np.bool_)
    return _Table(values, nothing, nothing)


# --- checks ---------------------------------------------------------------------------------


def _check(src: str, schema: DataSchema, table: _Table) -> Dataset:
    """Check every cell at once; raise for the first bad one; build the :class:`Dataset`."""
    n = table.values.shape[0]
    if n < schema.min_rows:
        raise _error(f"{src}: has {n} data rows; the schema needs at least {schema.min_rows}")
    label = schema.label
    names = _schema_names(schema)
    dtypes = [c.dtype for c in schema.features] + [label.dtype]
    k = len(names)
    n_classes = label.n_classes
    integral = np.array([dtype.startswith("int") for dtype in dtypes])
    integral[-1] |= n_classes is not None
    bounds = np.array([_INT_BOUNDS.get(dtype, (-_F32_MAX, _F32_MAX)) for dtype in dtypes]).T
    vmin = np.array([-np.inf if c.min is None else c.min for c in schema.features] + [-np.inf])
    vmax = np.array([np.inf if c.max is None else c.max for c in schema.features] + [np.inf])
    if n_classes is not None:
        vmin[-1], vmax[-1] = 0.0, float(n_classes - 1)

    def out_of_range(j: int) -> str:
        if j == k - 1 and n_classes is not None:
            return f"is not a class label in [0, {n_classes})"
        return f"is outside the column's range [{vmin[j]:g}, {vmax[j]:g}]"

    def not_integer(j: int) -> str:
        classes = j == k - 1 and n_classes is not None
        return "is not an integer class label" if classes else f"is not an {dtypes[j]}"

    def too_big(j: int) -> str:
        return f"does not fit {dtypes[j] if dtypes[j] in _INT_BOUNDS else 'float32'}"

    v = table.values
    checks: list[tuple[NDArray[np.bool_], Callable[[int], str]]] = [
        (table.missing, lambda j: "is empty"),
        (table.text, lambda j: "is not a number"),
        (~np.isfinite(v), lambda j: "is NaN or infinite"),
        (integral & (v != np.floor(v)), not_integer),
        ((v < bounds[0]) | (v > bounds[1]), too_big),
        ((v < vmin) | (v > vmax), out_of_range),
    ]
    bad = np.logical_or.reduce([mask for mask, _ in checks])
    if bad.any():
        row0, j = divmod(int(np.argmax(bad.ravel())), k)
        problem = next(describe(j) for mask, describe in checks if mask[row0, j])
        where = f'row {row0 + 1}, column "{names[j]}"'
        detail: dict[str, Any] = {"row": row0 + 1, "column": names[j]}
        if table.line_of is not None:
            detail["line"] = table.line_of(row0)
            where += f" (file line {detail['line']})"
        raise DataSchemaError(f"{src}: {where}: value {problem}", **detail)
    x = np.ascontiguousarray(v[:, : k - 1], dtype=np.float32)
    if n_classes is not None:
        return Dataset(x, v[:, -1].astype(np.int64))
    return Dataset(x, v[:, -1].astype(np.float32))


# --- writers (the demo uses them to give each trainer a data file) ---------------------------


def _arrays(x: ArrayLike, y: ArrayLike, schema: DataSchema) -> tuple[NDArray[Any], NDArray[Any]]:
    xs, ys = np.asarray(x), np.asarray(y)
    d = len(schema.features)
    if xs.ndim != 2 or xs.shape[1] != d or ys.shape != (xs.shape[0],):
        raise _error(f"x must be [n, {d}] and y [n] for this schema; got {xs.shape}, {ys.shape}")
    if xs.dtype.kind not in "iuf" or ys.dtype.kind not in "iuf":
        raise _error(f"x and y must hold numbers; got {xs.dtype} and {ys.dtype}")
    return xs, ys


def _text_format(a: NDArray[Any]) -> str:
    """Enough digits for the value to read back exactly."""
    if a.dtype.kind in "iu":
        return "%d"
    return "%.9g" if a.dtype.itemsize <= 4 else "%.17g"


def write_csv(path: Path, x: ArrayLike, y: ArrayLike, schema: DataSchema) -> None:
    """Write ``x`` [n, d] and ``y`` [n] as CSV under the schema's column names."""
    xs, ys = _arrays(x, y, schema)
    table = np.column_stack([xs.astype(np.float64), ys.astype(np.float64)])
    formats = [_text_format(xs)] * xs.shape[1] + [_text_format(ys)]
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerow(_schema_names(schema))
        np.savetxt(f, table, fmt=formats, delimiter=",")


def write_npz(path: Path, x: ArrayLike, y: ArrayLike, schema: DataSchema) -> None:
    """Write arrays ``x`` and ``y`` to ``path`` (which must end in .npz); never pickles."""
    xs, ys = _arrays(x, y, schema)
    if Path(path).suffix != ".npz":
        raise _error(f"{Path(path).name}: an NPZ data file must end in .npz")
    np.savez(path, x=xs, y=ys)  # numbers only (checked above): nothing to pickle


def write_parquet(path: Path, x: ArrayLike, y: ArrayLike, schema: DataSchema) -> None:
    """Write one Parquet column per schema feature (the arrays' dtypes) plus the label."""
    xs, ys = _arrays(x, y, schema)
    columns = {c.name: np.ascontiguousarray(xs[:, j]) for j, c in enumerate(schema.features)}
    columns[schema.label.name] = ys
    pq.write_table(pa.table(columns), Path(path))
