"""Reference samples: rows a version was trained or validated on, kept as a CSV file with a
header row (role `reference`) beside the model file. Monitoring compares live traffic with
them (`governance.profiles`, `monitoring.statistics`); validation predicts on some of their rows.

The file is read as a stream with the csv module, one column array per feature: numeric
features become float64 arrays (an empty cell is a missing value, NaN), text features
arrays of strings. Columns that are not features are ignored, except the target.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import ApplicationError, Unprocessable
from registry.metadata import NUMERIC_DTYPES

EXTENSIONS = (".csv",)
MIN_ROWS = 20
MAX_ROWS = 1_000_000
NUMERIC = NUMERIC_DTYPES
MISSING = {"", "na", "nan", "null", "none"}
# As pandas and spreadsheets write booleans.
BOOLEANS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


@dataclass
class ReferenceData:
    n_rows: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    target: np.ndarray | None = None

    def rows(self, names: list[str], limit: int, seed: int = 0) -> list[list]:
        """Up to `limit` complete rows (no missing value: a model may refuse NaN) in
        signature order, a reproducible uniform sample."""
        complete = np.ones(self.n_rows, dtype=bool)
        for name in names:
            column = self.columns[name]
            if column.dtype.kind == "f":
                complete &= ~np.isnan(column)
        index = np.flatnonzero(complete)
        if index.size > limit:
            index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
        out = []
        for i in index:
            row = []
            for name in names:
                value = self.columns[name][i]
                if isinstance(value, float | np.floating):
                    value = None if math.isnan(value) else float(value)
                row.append(value)
            out.append(row)
        return out

    def labelled_rows(self, names: list[str], limit: int, seed: int = 0
                      ) -> tuple[list[list], list[str]]:
        """Like `rows`, restricted to rows whose target is not missing: (rows, targets)."""
        if self.target is None:
            return [], []
        labelled = np.asarray([str(v).strip().lower() not in MISSING for v in self.target])
        subset = ReferenceData(
            n_rows=int(labelled.sum()),
            columns={name: self.columns[name][labelled] for name in names},
            target=self.target[labelled])
        complete = np.ones(subset.n_rows, dtype=bool)
        for name in names:
            if subset.columns[name].dtype.kind == "f":
                complete &= ~np.isnan(subset.columns[name])
        index = np.flatnonzero(complete)
        if index.size > limit:
            index = np.sort(np.random.default_rng(seed).choice(index, limit, replace=False))
        chosen = ReferenceData(n_rows=int(index.size),
                               columns={name: subset.columns[name][index] for name in names})
        return chosen.rows(names, limit), [str(v) for v in subset.target[index]]


def _error(message: str, **extra) -> Unprocessable:
    return Unprocessable(f"reference: {message}", field="reference", extra=extra)


def check_filename(name: str) -> None:
    if Path(name).suffix.lower() not in EXTENSIONS:
        raise ApplicationError(f"a reference sample is a CSV file with a header row, not "
                               f"{name!r}", field="reference")


def read(source, signature: list[dict], target: str = "") -> ReferenceData:
    """Parse a reference CSV (a path, bytes or a binary file) against a version's signature.

    Every refusal names the row (1 = the first data row) and the column.
    """
    if not signature:
        raise _error("the version declares no features (metadata.features or signature), so "
                     "there is nothing to compare a reference sample with")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, str | Path):
        with open(source, "rb") as fh:
            return read(fh, signature, target)
    text = codecs.getreader("utf-8-sig")(source, errors="strict")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise _error("the file is empty; the first line must name the columns") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _error(f"not a UTF-8 CSV file ({exc})") from None
    header = [name.strip() for name in header]
    if len(set(header)) != len(header):
        raise _error("a column is named twice in the header")
    position = {name: i for i, name in enumerate(header)}
    missing = [c["name"] for c in signature if c["name"] not in position]
    if missing:
        raise _error(f"the header has no column {missing[0]!r} (it needs every feature: "
                     f"{', '.join(c['name'] for c in signature)})", column=missing[0])
    wanted = [(c["name"], position[c["name"]], c["dtype"] in NUMERIC) for c in signature]
    target_at = position.get(target) if target else None
    values: dict[str, list] = {name: [] for name, _, _ in wanted}
    targets: list[str] = []
    n_rows = 0
    try:
        for n_rows, record in enumerate(reader, start=1):
            if n_rows > MAX_ROWS:
                raise _error(f"more than {MAX_ROWS:,} rows; send a sample")
            if len(record) != len(header):
                raise _error(f"row {n_rows}: {len(record)} values for {len(header)} columns",
                             row=n_rows)
            for name, at, numeric in wanted:
                if not numeric:  # as sent: live values are not stripped either
                    values[name].append(record[at])
                    continue
                cell = record[at].strip()
                if cell.lower() in MISSING:
                    values[name].append(math.nan)
                    continue
                try:
                    number = BOOLEANS.get(cell.lower()) if cell.lower() in BOOLEANS \
                        else float(cell)
                except ValueError:
                    raise _error(f"row {n_rows}, column {name!r}: {cell[:40]!r} is not a "
                                 "number", row=n_rows, column=name) from None
                if not math.isfinite(number):
                    raise _error(f"row {n_rows}, column {name!r}: {cell!r} is not a finite "
                                 "number", row=n_rows, column=name)
                values[name].append(number)
            if target_at is not None:
                targets.append(record[target_at].strip())
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _error(f"row {n_rows + 1}: not a UTF-8 CSV line ({exc})", row=n_rows + 1) from None
    if n_rows < MIN_ROWS:
        raise _error(f"{n_rows} rows; a reference sample needs at least {MIN_ROWS}")
    columns = {name: np.asarray(values[name], dtype=np.float64 if numeric else object)
               for name, _, numeric in wanted}
    return ReferenceData(n_rows=n_rows, columns=columns,
                         target=np.asarray(targets, dtype=object) if targets else None)
