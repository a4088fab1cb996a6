"""Loading a trainer's data file: round trips, and every way a file can fail the schema."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.typing import NDArray

from califusion.core.errors import DataSchemaError
from califusion.ml.data import Dataset, load_dataset, write_csv, write_npz, write_parquet
from califusion.ml.spec import DataSchema

SCHEMA = DataSchema.model_validate(
    {
        "features": [
            {"name": "x1"},
            {"name": "x2", "dtype": "float64", "min": 0, "max": 5},
            {"name": "count", "dtype": "int32"},
        ],
        "label": {"name": "label", "n_classes": 3},
        "min_rows": 2,
    }
)
REGRESSION = DataSchema.model_validate(
    {"features": [{"name": "a"}, {"name": "b"}], "label": {"name": "target", "dtype": "float32"}}
)
HEADER = "x1,x2,count,label"
GOOD_ROW = "0.5,2.5,3,1"


def _sample(n: int = 40, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.uniform(0, 5, n), rng.integers(0, 9, n)])
    return x.astype(np.float32), rng.integers(0, 3, n)


def _csv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fails(path: Path, schema: DataSchema = SCHEMA, **kwargs: Any) -> DataSchemaError:
    with pytest.raises(DataSchemaError) as caught:
        load_dataset(path, schema, **kwargs)
    return caught.value


def _assert_names(
    error: DataSchemaError, row: int, column: str, *, line: int | None = None
) -> None:
    assert f'row {row}, column "{column}"' in str(error)
    assert error.detail["row"] == row
    assert error.detail["column"] == column
    if line is not None:
        assert f"(file line {line})" in str(error)
        assert error.detail["line"] == line


# --- round trips ---------------------------------------------------------------------------


Writer = Callable[[Path, Any, Any, DataSchema], None]


@pytest.mark.parametrize(
    ("writer", "suffix"), [(write_csv, ".csv"), (write_npz, ".npz"), (write_parquet, ".parquet")]
)
def test_round_trip(tmp_path: Path, writer: Writer, suffix: str) -> None:
    x, y = _sample()
    path = tmp_path / f"data{suffix}"
    writer(path, x, y, SCHEMA)
    data = load_dataset(path, SCHEMA)
    assert isinstance(data, Dataset) and data.num_samples == 40
    assert data.x.dtype == np.float32 and data.x.shape == (40, 3)
    assert data.y.dtype == np.int64
    np.testing.assert_array_equal(data.x, x)
    np.testing.assert_array_equal(data.y, y)


def test_regression_labels_are_float32(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    y = np.linspace(-1, 1, 5, dtype=np.float32)
    write_npz(tmp_path / "r.npz", x, y, REGRESSION)
    data = load_dataset(tmp_path / "r.npz", REGRESSION)
    assert data.y.dtype == np.float32
    np.testing.assert_array_equal(data.y, y)


def test_csv_columns_by_name_in_any_order_extras_ignored(tmp_path: Path) -> None:
    path = _csv(tmp_path, "label,note,count,x2,x1", "2,hello,4,1.5,-3e-1", "0, ok , 1 ,0,+.5")
    data = load_dataset(path, SCHEMA)
    np.testing.assert_array_equal(data.x, np.array([[-0.3, 1.5, 4], [0.5, 0, 1]], np.float32))
    np.testing.assert_array_equal(data.y, [2, 0])


def test_csv_blank_lines_skipped_and_bom_accepted(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(f"\ufeff{HEADER}\n{GOOD_ROW}\n\n{GOOD_ROW}\n\n".encode())
    assert load_dataset(path, SCHEMA).num_samples == 2


def test_classification_labels_must_be_integers_whatever_the_label_dtype(tmp_path: Path) -> None:
    schema = DataSchema.model_validate(
        {"features": [{"name": "a"}], "label": {"name": "y", "dtype": "float32", "n_classes": 3}}
    )
    assert load_dataset(_csv(tmp_path, "a,y", "0.5,2.0"), schema).y.tolist() == [2]
    error = _fails(_csv(tmp_path, "a,y", "0.5,2", "0.5,1.5"), schema)
    _assert_names(error, 2, "y", line=3)
    assert "not an integer class label" in str(error)


def test_parquet_integer_columns_and_extra_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "x1": pa.array([1, 2], pa.int16()),
            "x2": pa.array([0.5, 1.0], pa.float32()),
            "count": pa.array([3, 4], pa.int64()),
            "label": pa.array([2.0, 1.0], pa.float64()),  # integral floats are labels
            "comment": pa.array(["a", "b"]),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    data = load_dataset(tmp_path / "d.parquet", SCHEMA)
    np.testing.assert_array_equal(data.x, [[1, 0.5, 3], [2, 1, 4]])
    np.testing.assert_array_equal(data.y, [2, 1])


# --- CSV failures: each names the row, the column and the file line ----------------------


@pytest.mark.parametrize(
    ("bad_row", "column", "words"),
    [
        ("0.5,abc,3,1", "x2", "not a number"),
        ("0.5,,3,1", "x2", "is empty"),
        ("0.5,2.5,3,", "label", "is empty"),
        ("nan,2.5,3,1", "x1", "NaN or infinite"),
        ("0.5,-inf,3,1", "x2", "NaN or infinite"),
        ("0.5,7,3,1", "x2", "outside the column's range [0, 5]"),
        ("0.5,-0.1,3,1", "x2", "outside the column's range [0, 5]"),
        ("0.5,2.5,3.5,1", "count", "not an int32"),
        ("0.5,2.5,3e10,1", "count", "does not fit int32"),
        ("1e39,2.5,3,1", "x1", "does not fit float32"),
        ("0.5,2.5,3,1.5", "label", "not an integer class label"),
        ("0.5,2.5,3,3", "label", "not a class label in [0, 3)"),
        ("0.5,2.5,3,-1", "label", "not a class label in [0, 3)"),
        ("0.5,2.5,3,one", "label", "not a number"),
        ("0.5,1_0,3,1", "x2", "not a number"),
    ],
)
def test_csv_bad_value(tmp_path: Path, bad_row: str, column: str, words: str) -> None:
    error = _fails(_csv(tmp_path, HEADER, GOOD_ROW, GOOD_ROW, bad_row, "abc,abc,abc,abc"))
    _assert_names(error, 3, column, line=4)
    assert words in str(error)
    assert str(error).startswith("data.csv: ")


def test_csv_first_bad_value_wins(tmp_path: Path) -> None:
    error = _fails(_csv(tmp_path, HEADER, GOOD_ROW, "0.5,2.5,3,9", "x,y,z,w"))
    _assert_names(error, 2, "label", line=3)
    error = _fails(_csv(tmp_path, HEADER, "0.5,9,x,1", GOOD_ROW))
    _assert_names(error, 1, "x2", line=2)


def test_csv_file_line_differs_from_row_after_blank_and_multiline_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, HEADER, GOOD_ROW, "", '"0.5\n",2.5,3,1', "", "0.5,2.5,x,1")
    _assert_names(_fails(path), 3, "count", line=7)


def test_csv_too_few_fields_names_the_first_missing_column(tmp_path: Path) -> None:
    error = _fails(_csv(tmp_path, HEADER, GOOD_ROW, "0.5,2.5"))
    _assert_names(error, 2, "count", line=3)
    assert "2 fields" in str(error)


def test_csv_too_many_fields(tmp_path: Path) -> None:
    error = _fails(_csv(tmp_path, HEADER, GOOD_ROW, GOOD_ROW + ",9"))
    assert "row 2 (file line 3)" in str(error) and "5 fields" in str(error)
    assert error.detail["row"] == 2 and error.detail["column"] is None


def test_csv_missing_column_lists_what_the_file_has(tmp_path: Path) -> None:
    error = _fails(_csv(tmp_path, "x1,count,label,other", "1,2,0,9"))
    assert 'missing column "x2"' in str(error)
    assert '"x1", "count", "label", "other"' in str(error)
    assert error.detail["column"] == "x2" and error.detail["row"] is None


def test_csv_structure_problems(tmp_path: Path) -> None:
    assert "no header row" in str(_fails(_csv(tmp_path, "")))
    assert "more than once" in str(_fails(_csv(tmp_path, HEADER + ",x1", GOOD_ROW + ",1")))
    assert "at least 2" in str(_fails(_csv(tmp_path, HEADER, GOOD_ROW)))
    path = tmp_path / "data.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe,1,2,3\n")
    assert "not UTF-8" in str(_fails(path))
    path.write_text(f'{HEADER}\n"0.5"x,2.5,3,1\n')
    assert "not valid CSV at file line 2" in str(_fails(path))


def test_error_messages_do_not_quote_data(tmp_path: Path) -> None:
    error = _fails(_csv(tmp_path, HEADER, GOOD_ROW, "0.5,secret-value,3,1"))
    assert "secret" not in str(error) and "secret" not in str(error.problem())


# --- file-level failures -------------------------------------------------------------------


def test_unsupported_missing_and_oversized_files(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{}")
    assert "unsupported data file type '.json'" in str(_fails(tmp_path / "data.json"))
    assert "cannot read" in str(_fails(tmp_path / "absent.csv"))
    path = _csv(tmp_path, HEADER, GOOD_ROW, GOOD_ROW)
    assert "over the limit of 10 bytes" in str(_fails(path, max_bytes=10))
    assert load_dataset(path, SCHEMA, max_bytes=path.stat().st_size).num_samples == 2


def test_corrupt_parquet_and_npz(tmp_path: Path) -> None:
    (tmp_path / "d.parquet").write_bytes(b"PAR1 not really")
    assert "cannot read Parquet" in str(_fails(tmp_path / "d.parquet"))
    (tmp_path / "d.npz").write_bytes(b"PK not a zip")
    assert "not a readable NPZ" in str(_fails(tmp_path / "d.npz"))


# --- Parquet failures ----------------------------------------------------------------------


def _parquet(tmp_path: Path, **overrides: Any) -> Path:
    x, y = _sample(4)
    columns: dict[str, Any] = {"x1": x[:, 0], "x2": x[:, 1], "count": x[:, 2], "label": y}
    columns.update(overrides)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({k: v for k, v in columns.items() if v is not None}), path)
    return path


def test_parquet_bad_values_name_row_and_column(tmp_path: Path) -> None:
    error = _fails(_parquet(tmp_path, x2=pa.array([1.0, 2.0, None, 1.0])))
    _assert_names(error, 3, "x2")
    assert "is empty" in str(error) and "line" not in error.detail
    _assert_names(_fails(_parquet(tmp_path, x1=[0.0, np.nan, 0.0, 0.0])), 2, "x1")
    _assert_names(_fails(_parquet(tmp_path, label=[0, 1, 2, 3])), 4, "label")
    _assert_names(_fails(_parquet(tmp_path, label=[0.0, 0.5, 1.0, 1.0])), 2, "label")


def test_parquet_wrong_type_and_missing_column(tmp_path: Path) -> None:
    error = _fails(_parquet(tmp_path, x2=["1", "2", "3", "4"]))
    assert 'column "x2" has Parquet type string' in str(error)
    assert error.detail["column"] == "x2"
    error = _fails(_parquet(tmp_path, count=None))
    assert 'missing column "count"' in str(error) and '"x1", "x2", "label"' in str(error)


# --- NPZ failures --------------------------------------------------------------------------


def test_npz_bad_values_name_row_and_column_by_position(tmp_path: Path) -> None:
    x, y = _sample(6)
    x[4, 1] = 9.0
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _assert_names(_fails(tmp_path / "d.npz"), 5, "x2")
    x, y = _sample(6)
    y[2] = 7
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _assert_names(_fails(tmp_path / "d.npz"), 3, "label")


def test_npz_shapes_and_missing_arrays(tmp_path: Path) -> None:
    x, y = _sample(6)
    np.savez(tmp_path / "d.npz", x=x[:, :2], y=y)
    assert "shape [n, 3]" in str(_fails(tmp_path / "d.npz"))
    np.savez(tmp_path / "d.npz", x=x, y=y[:5])
    assert 'array "y" has shape (5,)' in str(_fails(tmp_path / "d.npz"))
    np.savez(tmp_path / "d.npz", features=x, y=y)
    error = _fails(tmp_path / "d.npz")
    assert 'missing array "x"' in str(error) and '"features"' in str(error)


def test_npz_object_array_is_refused_without_unpickling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("load_dataset tried to unpickle")

    x, _ = _sample(3)
    objects = np.empty(3, dtype=object)
    objects[:] = [1, "two", {"three": 3}]
    np.savez(tmp_path / "d.npz", x=x, y=objects, allow_pickle=True)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    error = _fails(tmp_path / "d.npz")
    assert 'array "y" holds Python objects' in str(error)


def test_npz_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    x = np.zeros((200_000, 3), np.float32)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.zeros(200_000, np.int64))
    assert (tmp_path / "d.npz").stat().st_size < 100_000
    assert 'array "x" would take over 100000 bytes' in str(
        _fails(tmp_path / "d.npz", max_bytes=100_000)
    )


def test_writers_check_shapes(tmp_path: Path) -> None:
    x, y = _sample(4)
    with pytest.raises(DataSchemaError, match=r"x must be \[n, 3\]"):
        write_csv(tmp_path / "d.csv", x[:, :2], y, SCHEMA)
    with pytest.raises(DataSchemaError, match=r"must end in \.npz"):
        write_npz(tmp_path / "d.bin", x, y, SCHEMA)
