"""Reading delimited text files with errors that name the file and line: gzip, byte-order marks,
non-UTF-8 bytes, wrong field counts and non-numeric values."""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from graphmig.data.table import DataValidationError

log = logging.getLogger(__name__)

ENCODING_FALLBACKS = ("latin-1", "error")


def read_bytes(path: Path) -> bytes:
    """Return the file's bytes, decompressed when the name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataValidationError(f"{path}: cannot be read ({error}); check that the file is complete") from error


def decode_text(data: bytes, path: Path, fallback: str = "latin-1") -> str:
    """Decode UTF-8 (a leading byte-order mark is dropped); on invalid bytes decode Latin-1 with a warning,
    or raise an error naming the line when ``fallback="error"``."""
    if fallback not in ENCODING_FALLBACKS:
        raise ValueError(f"encoding fallback {fallback!r} is invalid; use one of {ENCODING_FALLBACKS}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        if fallback == "error":
            raise DataValidationError(
                f"{path}, line {line}: byte {data[error.start]:#04x} is not valid UTF-8; convert the file to "
                f"UTF-8 or set data.encoding_fallback=latin-1 to decode it as Latin-1"
            ) from error
        log.warning("%s, line %d: bytes that are not UTF-8; decoding the whole file as Latin-1", path, line)
        return data.decode("latin-1")


def read_delimited(path: str | Path, sep: str, header: bool = True, names: Sequence[str] | None = None,
                   required: Sequence[str] = (), numeric: dict[str, str] | None = None,
                   encoding_fallback: str = "latin-1") -> pd.DataFrame:
    """Read a delimited file as strings, check it, and convert the ``numeric`` columns.

    Args:
        sep: field separator; ``"whitespace"`` splits on runs of spaces and tabs.
        header: whether the first line names the columns; without it ``names`` gives them.
        required: columns that must exist and have a value on every line.
        numeric: column -> numpy dtype ("float32", "int64", ...) for columns that must parse as numbers.

    Errors name the file and the 1-based line: a wrong number of fields, a missing required value, a
    value that is not a number, a required column that does not exist.
    """
    path = Path(path)
    text = decode_text(read_bytes(path), path, encoding_fallback)
    first_data_line = 2 if header else 1
    options = {"sep": r"\s+" if sep == "whitespace" else sep, "dtype": str, "keep_default_na": False,
               "skip_blank_lines": False, "header": 0 if header else None}
    if not header:
        if not names:
            raise ValueError(f"{path}: a file without a header needs column names")
        options["names"] = list(names)
    try:
        frame = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.ParserError as error:
        raise DataValidationError(f"{path}: malformed row: {error}") from error

    frame.columns = [str(c).strip() for c in frame.columns]
    missing_columns = [c for c in required if c not in frame.columns]
    if missing_columns:
        raise DataValidationError(f"{path}: missing column(s) {missing_columns}; the header has "
                                  f"{list(frame.columns)}. Fix the file or the column names in the data config")

    # Blank lines become rows of empty strings; they are dropped here, after line numbers are fixed.
    values = frame.fillna("")
    blank = (values == "").all(axis=1)
    frame = frame.loc[~blank]
    for column in required:
        empty = frame[column].isna() | (frame[column].str.strip() == "")
        if empty.any():
            line = int(frame.index[np.argmax(empty.to_numpy())]) + first_data_line
            raise DataValidationError(f"{path}, line {line}: column {column!r} is empty or the line has too "
                                      f"few fields; every line needs a value there")
    for column, dtype in (numeric or {}).items():
        if column not in frame.columns:
            continue
        raw = frame[column]
        parsed = pd.to_numeric(raw, errors="coerce")
        bad = parsed.isna() & raw.notna() & (raw.str.strip() != "")
        if bad.any():
            position = int(np.argmax(bad.to_numpy()))
            line = int(frame.index[position]) + first_data_line
            raise DataValidationError(f"{path}, line {line}: column {column!r} has value {raw.iloc[position]!r}, "
                                      f"which is not a number")
        if np.issubdtype(np.dtype(dtype), np.integer) and parsed.notna().all():
            frame[column] = parsed.astype(dtype)
        else:
            frame[column] = parsed.astype("float64" if np.issubdtype(np.dtype(dtype), np.integer) else dtype)
    return frame.reset_index(drop=True)
