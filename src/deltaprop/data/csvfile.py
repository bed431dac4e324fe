"""CSV and TSV tables, plain or gzipped: NumPy's C parser for speed, the csv module for blame.

A table is read in one pass of :func:`numpy.loadtxt` (NumPy's C tokenizer and float parser,
about as fast as reading CSV gets without another dependency). Text columns (categorical
features, a text target, columns nobody asked for) go through small converters that map each
cell to a code as it is read. Anything that pass cannot take exactly — a bad or missing cell, a
ragged row, a blank line of spaces, a field over the size limit, bytes that are not UTF-8 —
sends the file to the second reader, Python's csv module row by row, which is the reference:
it accepts what it accepts, and raises :class:`DataError` naming the file, the line and the
column of the first problem. Both readers give the same table (tests/test_csv.py checks it).

Missing cells are the empty cell and the usual markers (:data:`MISSING`, compared without case
and surrounding spaces). By default they are refused, naming the cell; ``missing="keep"``
reads them as NaN (category code NaN for categorical columns), for an imputer to fill.

A feature column is categorical when it is named in ``categorical`` or when its first cell that
is not missing is not a number; its categories are its distinct cells, sorted, and the table
holds each cell's index into them. A column that starts with text but also holds numbers is
refused (a typo in a numeric column must not silently become a category), unless it is named.
"""

from __future__ import annotations

import csv
import gzip
import math
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from deltaprop.data.readers import error, open_data

# Cells that mean "no value", compared lowercased and stripped (pandas' common markers).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
MISSING_POLICIES = ("error", "keep")
DELIMITERS = ",;\t|"
GZIP_MAGIC = b"\x1f\x8b"
# The delimiter is sniffed from this much of the start of the file.
SNIFF_CHARS = 64 * 1024
# The first rows decide which columns are text.
PEEK_ROWS = 100
# A column found to be text with more distinct values than this is an identifier or free
# text, not a category: refused, unless named in ``categorical``.
MAX_AUTO_CATEGORIES = 100
FIELD_LIMIT = csv.field_size_limit()


class CsvTable(NamedTuple):
    X: np.ndarray  # (n, len(features)) float64; category codes in categorical columns; NaN missing
    target: np.ndarray | list[str] | None  # float64 if every target cell is a number, else text
    lines: Sequence[int]  # the line each row starts on (found on first use)
    features: list[str]
    target_name: str | None
    categories: dict[str, list[str]]  # categorical feature column -> its sorted categories


Chooser = Callable[[list[str]], "tuple[list[str] | None, str | None]"]


def read_csv(
    path: Path,
    choose: Chooser,
    *,
    delimiter: str | None = None,
    missing: str = "error",
    categorical: Sequence[str] = (),
) -> CsvTable:
    """Feature columns and the target column of a CSV file with a header row.

    ``choose(header)`` returns (feature names, or None for every column but the target;
    target name or None) once the header is known. ``delimiter`` None sniffs it (tab for a
    .tsv name). ``missing``: "error" refuses a missing cell, naming it; "keep" reads NaN.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}. Received: {missing!r}")
    with open_data(path):  # a FIFO or a device is refused at once, never read
        pass
    delimiter = delimiter_for(path, delimiter)
    layout = _layout(path, delimiter, choose, set(categorical))
    table = _fast(path, delimiter, layout, missing)
    if table is None:
        table = _slow(path, delimiter, layout, missing)
    _check_categories(path, layout, table)
    return table


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_text(path: Path):
    """The file as UTF-8 text (a byte-order mark dropped), gunzipped if it is gzip."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def delimiter_for(path: Path, requested: str | None) -> str:
    """``requested`` checked, or tab for .tsv, or the one csv.Sniffer finds (default ",")."""
    if requested is not None:
        if not isinstance(requested, str) or len(requested) != 1 or requested in '"\r\n':
            raise ValueError(
                "delimiter must be one character other than a quote or a line break. "
                f"Received: delimiter={requested!r}"
            )
        return requested
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".tsv", ".tab")):
        return "\t"
    try:
        with open_text(path) as f:
            sample = f.read(SNIFF_CHARS)
    except (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile):
        return ","  # the reader names the problem, with its line
    # Whole lines, and none blank: a cut or empty line would mislead the count of delimiters
    # per line that the sniffer goes by.
    sample = sample[: sample.rfind("\n") + 1] or sample
    sample = "\n".join(line for line in sample.splitlines() if line.strip()) + "\n"
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","  # a single column, or nothing consistent: the standard's comma


# ------------------------------------------------------------------------------ layout
class _Layout(NamedTuple):
    header: list[str]
    header_end: int  # the last physical line of the header row
    features: list[str]
    target: str | None
    kinds: list[str]  # per header column: "number", "text", "label" (a text target), "ignored"
    named: set[str]  # columns the caller declared categorical


def _records(path: Path, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, fields) for every record that is not blank."""
    last = 0
    try:
        with open_text(path) as f:
            reader = csv.reader(f, delimiter=delimiter)
            for fields in reader:
                start, last = last + 1, reader.line_num
                if fields and not (len(fields) == 1 and not fields[0].strip()):
                    yield start, last, fields
    except csv.Error as exc:
        raise error(path, f"not valid CSV: {exc}", line=last + 1) from None
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text ({exc.reason})", line=last + 1) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise error(path, f"not a valid gzip file: {exc}", line=last + 1) from None


def _layout(path: Path, delimiter: str, choose: Chooser, named: set[str]) -> _Layout:
    """The header checked, the columns chosen, and each column's kind from the first rows."""
    records = _records(path, delimiter)
    try:
        first = next(records, None)
        if first is None:
            raise error(path, "empty file; expected a header row, then one row per example")
        header_line, header_end, header = first
        header = _check_header(path, header, header_line)
        peek = [fields for _, _, fields in _take(records, PEEK_ROWS)]
    finally:
        records.close()
    features, target = choose(header)
    for name in [*(features or []), *([target] if target is not None else []), *sorted(named)]:
        if name not in header:
            raise error(path, f"no column named {name!r}; the columns are {header}", header_line)
    features = features if features is not None else [h for h in header if h != target]
    if not features:
        raise error(path, f"no feature columns besides the target {target!r}", header_line)
    used = set(features) | ({target} if target is not None else set())
    kinds = []
    for j, name in enumerate(header):
        if name not in used:
            kinds.append("ignored")
        elif name in named and name != target:
            kinds.append("text")
        elif name == target and not _numeric_start(peek, j):
            kinds.append("label")  # text class labels, read as they are
        else:
            kinds.append("number" if _numeric_start(peek, j) else "text")
    return _Layout(header, header_end, features, target, kinds, named)


def _numeric_start(peek: list[list[str]], j: int) -> bool:
    """Whether column ``j``'s first cell that is not missing is a number (True if none is)."""
    cells = (row[j] for row in peek if j < len(row) and not _is_missing(row[j]))
    return _parses(next(cells, "0"))


def _take(records: Iterator, n: int) -> Iterator:
    for _, item in zip(range(n), records):
        yield item


def _check_header(path: Path, header: list[str], line: int) -> list[str]:
    header = [name.strip() for name in header]
    first_seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if not name:
            raise error(path, "empty column name in the header row", line, j + 1)
        if name in first_seen:
            raise error(
                path,
                f"duplicate column name {name!r} (also column {first_seen[name] + 1})",
                line,
                j + 1,
            )
        first_seen[name] = j
    return header


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------ fast path
class _Refused(ValueError):
    """A cell the fast path will not decide; the csv-module reader names it."""


def _code(codes: dict[str, int], missing: str, cell: str) -> float:
    """A text cell's code: its order of first appearance (NaN for a missing cell kept;
    ``missing`` "raw" for class labels, which the target's encoder judges as they are)."""
    text = cell.strip()
    if missing != "raw" and text.lower() in MISSING:
        if missing == "keep":
            return math.nan
        raise _Refused(cell)
    if len(cell) > FIELD_LIMIT:
        raise _Refused("field over the limit")
    return codes.setdefault(text, len(codes))


def _ignore(cell: str) -> float:
    if len(cell) > FIELD_LIMIT:
        raise _Refused("field over the limit")
    return 0.0


def _fast(path: Path, delimiter: str, layout: _Layout, missing: str) -> CsvTable | None:
    """The table from numpy.loadtxt, or None where only the csv-module reader may decide."""
    codes: dict[int, dict[str, int]] = {}
    converters: dict[int, Callable[[str], float]] = {}
    for j, kind in enumerate(layout.kinds):
        if kind in ("text", "label"):
            codes[j] = {}
            converters[j] = partial(_code, codes[j], missing if kind == "text" else "raw")
        elif kind == "ignored":
            converters[j] = _ignore
    try:
        # An empty body is the slow reader's to name ("no data rows"), not NumPy's warning.
        with open_text(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            cells = np.loadtxt(
                f,
                dtype=np.float64,
                delimiter=delimiter,
                quotechar='"',
                comments=None,
                skiprows=layout.header_end,
                converters=converters or None,
                ndmin=2,
            )
    except (ValueError, EOFError, zlib.error, gzip.BadGzipFile, csv.Error):
        return None  # UnicodeDecodeError and _Refused are ValueErrors too
    if cells.shape[0] == 0 or cells.shape[1] != len(layout.header):
        return None
    header = layout.header
    numeric = [j for j, kind in enumerate(layout.kinds) if kind == "number"]
    # Ignored columns read as 0 and text codes are finite unless kept missing, so the whole
    # array is checked at once without copying the numeric columns out first.
    finite = np.isfinite(cells).all() or np.isfinite(cells[:, numeric]).all()
    if not finite:
        return None  # "nan", "inf": the slow reader says which cell (or keeps it missing)
    text = {header[j]: _sorted_codes(cells[:, j], codes[j]) for j in codes}
    return _table(path, delimiter, layout, cells, text, lines=None)


def _sorted_codes(column: np.ndarray, codes: dict[str, int]) -> tuple[np.ndarray, list[str]]:
    """Codes in order of first appearance renumbered to the sorted categories (NaN kept)."""
    categories = sorted(codes)
    renumber = np.empty(len(codes) + 1)
    for rank, value in enumerate(categories):
        renumber[codes[value]] = rank
    renumber[-1] = math.nan
    index = np.where(np.isnan(column), len(codes), column).astype(np.int64)
    return renumber[index], categories


def _table(path, delimiter, layout, cells, text, lines) -> CsvTable:
    """The caller's view of the parsed cells: features in order, the target, categories."""
    position = {name: j for j, name in enumerate(layout.header)}
    # One gather of every feature column (a loop of column copies is slow on wide files),
    # then the categorical columns' codes written over theirs. Features side by side (all
    # columns but a first or last target) are one slice's copy, 4x faster than a gather.
    columns = [position[name] for name in layout.features]
    if columns == list(range(columns[0], columns[0] + len(columns))):
        X = cells[:, columns[0] : columns[0] + len(columns)].copy()
    else:
        X = cells[:, columns]
    categories = {}
    for k, name in enumerate(layout.features):
        if name in text:
            X[:, k], categories[name] = text[name]
    target = None
    if layout.target is not None:
        if layout.target in text:
            codes, values = text[layout.target]
            target = [values[int(c)] for c in codes]
        else:
            target = cells[:, position[layout.target]].copy()
    if lines is None:
        lines = _Lines(path, delimiter)
    return CsvTable(X, target, lines, list(layout.features), layout.target, categories)


class _Lines(Sequence):
    """The line each data row starts on, found by reading the file again when first asked
    (only error messages ask, so the fast path never pays for it)."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self._path, self._delimiter, self._lines = path, delimiter, None

    def _all(self) -> list[int]:
        if self._lines is None:
            rows = _records(self._path, self._delimiter)
            next(rows, None)
            self._lines = [start for start, _, _ in rows]
        return self._lines

    def __getitem__(self, i):
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())


# ------------------------------------------------------------------------------ slow path
def _slow(path: Path, delimiter: str, layout: _Layout, missing: str) -> CsvTable:
    """The table read row by row with the csv module; DataError at the first bad cell."""
    header, width = layout.header, len(layout.header)
    t = header.index(layout.target) if layout.target is not None else None
    numeric = [j for j, kind in enumerate(layout.kinds) if kind == "number" and j != t]
    text = [j for j, kind in enumerate(layout.kinds) if kind == "text"]
    labels: list[str] = []
    values: list[list[float]] = []
    cells: dict[int, list[str]] = {j: [] for j in text}
    lines = []
    records = _records(path, delimiter)
    try:
        next(records, None)
        for line, _, fields in records:
            _check_width(path, fields, header, line)
            values.append([_number(path, fields[j], line, header[j], missing) for j in numeric])
            for j in text:
                cells[j].append(_text_cell(path, fields[j], line, header[j], missing))
            if t is not None:
                labels.append(fields[t].strip())
            lines.append(line)
    finally:
        records.close()
    if not lines:
        raise error(path, "no data rows after the header", layout.header_end)
    table = np.full((len(lines), width), math.nan)
    if numeric:
        table[:, numeric] = np.array(values, dtype=np.float64).reshape(len(lines), len(numeric))
    coded = {}
    for j in text:
        categories = sorted({c for c in cells[j] if c is not None})
        index = {c: k for k, c in enumerate(categories)}
        codes = np.array([math.nan if c is None else index[c] for c in cells[j]])
        coded[header[j]] = (codes, categories)
    if t is not None:  # the target as text cells, which its encoder judges
        names = sorted(set(labels))
        index = {c: k for k, c in enumerate(names)}
        coded[header[t]] = (np.array([index[c] for c in labels], dtype=np.float64), names)
    return _table(path, delimiter, layout, table, coded, lines)


def _check_width(path: Path, fields: list[str], header: list[str], line: int) -> None:
    width = len(header)
    if len(fields) < width:
        raise error(
            path,
            f"missing: the row has {len(fields)} fields, the header {width}",
            line,
            header[len(fields)],
        )
    if len(fields) > width:
        raise error(
            path,
            f"extra field {fields[width][:40]!r}: the header has {width} columns",
            line,
            width + 1,
        )


def _missing_cell(path: Path, cell: str, line: int, column: str):
    shown = "empty cell" if not cell.strip() else f"{cell.strip()[:40]!r}"
    return error(
        path,
        f"{shown}: a missing value; fill it, or read missing values with missing='keep' "
        "and impute them (on the command line: --impute mean|median)",
        line,
        column,
    )


def _number(path: Path, cell: str, line: int, column: str, missing: str) -> float:
    if _is_missing(cell):
        if missing == "keep":
            return math.nan
        raise _missing_cell(path, cell, line, column)
    try:
        value = float(cell)
    except ValueError:
        raise error(path, f"{cell[:40]!r} is not a number", line, column) from None
    if not math.isfinite(value):
        raise error(path, f"{value} is not a finite number", line, column)
    return value


def _text_cell(path: Path, cell: str, line: int, column: str, missing: str) -> str | None:
    if _is_missing(cell):
        if missing == "keep":
            return None
        raise _missing_cell(path, cell, line, column)
    return cell.strip()


# ------------------------------------------------------------------------------ checks
def _check_categories(path: Path, layout: _Layout, table: CsvTable) -> None:
    """Found (not named) categorical columns must be text throughout, and few-valued."""
    for k, name in enumerate(table.features):
        if name not in table.categories or name in layout.named:
            continue
        categories = table.categories[name]
        commas = [c for c in categories if "," in c and _parses(c.replace(",", "."))]
        numbers = [c for c in categories if _parses(c)] or commas
        if numbers:
            row = int(np.flatnonzero(table.X[:, k] == categories.index(numbers[0]))[0])
            what = (
                "is a number in a column that starts with text; fix the cells that are not numbers"
                if _parses(numbers[0])
                else "looks like a number with a decimal comma, and numbers here are read with "
                "a decimal point (and do not start with text): convert the file"
            )
            raise error(
                path,
                f"{numbers[0][:40]!r} {what}, or name the column categorical "
                "(categorical=[...]; on the command line --categorical)",
                table.lines[row],
                name,
            )
        if len(categories) > MAX_AUTO_CATEGORIES:
            raise error(
                path,
                f"column {name!r} holds text with {len(categories)} distinct values, more than "
                f"the {MAX_AUTO_CATEGORIES} a category column is taken to have (an identifier "
                "or free text?); leave it out of the features, or name it categorical",
            )
