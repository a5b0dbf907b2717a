"""Reading delimited text files with errors that name the file and line: gzip, byte-order marks,
non-UTF-8 bytes, wrong field counts and non-numeric values."""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import re
from collections.abc import Mapping, Sequence
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
        # A UTF-8 byte-order mark would decode as three Latin-1 letters glued to the first header name.
        return data.removeprefix(codecs.BOM_UTF8).decode("latin-1")


def read_delimited(path: str | Path, sep: str, header: bool = True, names: Sequence[str] | None = None,
                   required: Sequence[str] = (), numeric: dict[str, str] | None = None,
                   encoding_fallback: str = "latin-1", column_keys: Mapping[str, str] | None = None,
                   names_key: str = "the names argument") -> pd.DataFrame:
    """Read a delimited file as strings, check it, and convert the ``numeric`` columns.

    Args:
        sep: field separator; ``"whitespace"`` splits on runs of spaces and tabs.
        header: whether the first line names the columns; without it ``names`` gives them.
        required: columns that must exist and have a value on every line.
        numeric: column -> numpy dtype ("float32", "int64", ...) for columns that must parse as numbers.
        column_keys: column -> the config key that set its name, quoted when the column is missing.
        names_key: the config key of ``names``, quoted when a headerless file has more fields than names.

    Errors name the file and the 1-based line: a wrong number of fields, a missing required value, a
    value that is not a number, a required column that does not exist, a repeated header name.
    """
    path = Path(path)
    text = decode_text(read_bytes(path), path, encoding_fallback)
    if not header and not names:
        raise ValueError(f"{path}: a file without a header needs column names")
    first_data_line = 2 if header else 1
    # The first line fixes the number of fields: pandas rejects longer lines (with their line number) and
    # fills shorter ones with missing values. Column names are set below, not by pandas, because pandas
    # silently turns surplus leading fields into an index when the lines have more fields than names.
    options = {"sep": r"\s+" if sep == "whitespace" else sep, "dtype": str, "keep_default_na": False,
               "skip_blank_lines": False, "header": None, "index_col": False}
    try:
        frame = pd.read_csv(io.StringIO(text), **options)
    except pd.errors.EmptyDataError as error:
        raise DataValidationError(f"{path}: the file is empty; it needs at least one line") from error
    except pd.errors.ParserError as error:
        raise DataValidationError(_describe_parser_error(path, error)) from error

    if header:
        columns = [str(c).strip() for c in frame.iloc[0]] if len(frame) else []
        frame = frame.iloc[1:]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise DataValidationError(f"{path}, line 1: the header names column(s) {repeated} more than once; "
                                      f"give each column a distinct name")
    else:
        columns = [str(c).strip() for c in names]
        surplus = frame.iloc[:, len(columns):]
        if surplus.shape[1] and surplus.notna().to_numpy().any():
            position = int(np.argmax(surplus.notna().to_numpy().any(axis=1)))
            fields = int(frame.iloc[position].notna().sum())
            raise DataValidationError(
                f"{path}, line {position + 1}: {fields} fields, but {names_key} lists {len(columns)} columns "
                f"({columns}); name every column of the file there"
            )
        frame = frame.iloc[:, :len(columns)]
        columns = columns[:frame.shape[1]]
    frame.columns = columns
    frame.index = range(len(frame))

    missing_columns = [c for c in required if c not in frame.columns]
    if missing_columns:
        keys = column_keys or {}
        described = str(missing_columns)
        if any(c in keys for c in missing_columns):
            described = ", ".join(f"{c!r} (set by {keys[c]})" if c in keys else repr(c) for c in missing_columns)
        source = "the header has" if header else f"{names_key} gives"
        raise DataValidationError(f"{path}: missing column(s) {described}; {source} {list(frame.columns)}. "
                                  f"Fix the file or the column names in the data config")

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
        if np.issubdtype(np.dtype(dtype), np.integer):
            # Casting would cut 1.5 to 1 without a word, so a fraction in an integer column is an error.
            fractional = parsed.notna() & (parsed % 1 != 0)
            if fractional.any():
                position = int(np.argmax(fractional.to_numpy()))
                line = int(frame.index[position]) + first_data_line
                raise DataValidationError(f"{path}, line {line}: column {column!r} has value "
                                          f"{raw.iloc[position]!r}, which is not an integer")
        if np.issubdtype(np.dtype(dtype), np.integer) and parsed.notna().all():
            frame[column] = parsed.astype(dtype)
        else:
            frame[column] = parsed.astype("float64" if np.issubdtype(np.dtype(dtype), np.integer) else dtype)
    return frame.reset_index(drop=True)


def _describe_parser_error(path: Path, error: pd.errors.ParserError) -> str:
    """Reword pandas' "Expected 3 fields in line 5, saw 4" as a message that names the file and line."""
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if match is None:
        return f"{path}: malformed row: {error}"
    expected, line, seen = match.groups()
    return (f"{path}, line {line}: {seen} fields, but the first line has {expected}; every line needs the "
            f"same number of fields (quote fields that contain the separator)")
