"""Request bodies to a matrix in signature order, refusing bad input precisely.

REST bodies come in the four shapes of MLflow's scoring server:

    {"instances": [{"feature": value, ...}, ...]}
    {"inputs": [[...], ...]}                      rows in signature order
    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
    {"dataframe_records": [{...}, ...]}

Open Inference Protocol bodies carry tensors: one `[N, F]` tensor in signature order, or one
`[N]` tensor per feature, named after it, either in JSON (`data`) or as raw little-endian
bytes after the JSON header (the binary tensor data extension: `split_binary`). A BOOL tensor
feeds only `bool` features and a BYTES tensor only text ones (`string`, `category`); numbers
feed any feature. Every refusal names the row and the feature.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass

import numpy as np
import orjson

from core.limits import MAX_JSON_DEPTH, is_finite_number
from core.parsers import TooDeep, check_depth, json_loads
from registry.metadata import NUMERIC_DTYPES

NUMERIC = NUMERIC_DTYPES
INTEGER = {"int64", "int32"}
TEXT = {"string", "category"}
V2_DATATYPES = {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
                "UINT64", "FP16", "FP32", "FP64", "BYTES"}
# The binary tensor data extension: each datatype's little-endian element (BYTES elements are
# a 4-byte little-endian length and that many bytes of UTF-8 text).
BINARY_DTYPES = {"BOOL": np.dtype("u1"), "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"),
                 "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"), "UINT8": np.dtype("<u1"),
                 "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
                 "UINT64": np.dtype("<u8"), "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"),
                 "FP64": np.dtype("<f8")}
HEADER_LENGTH = "Inference-Header-Content-Length"


# Models compute in float32 (trees, torch, onnx): a larger magnitude overflows inside the
# model, which would answer a 500 for what is the caller's input.
LARGEST = float(np.finfo(np.float32).max)


class InputError(Exception):
    """A request the model cannot take. `status` is 400 (malformed), 413 or 422."""

    def __init__(self, message: str, *, status: int = 422, field: str = "body",
                 row: int | None = None, feature: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field
        self.row = row
        self.feature = feature


@dataclass(frozen=True)
class Signature:
    names: tuple[str, ...]
    dtypes: tuple[str, ...]

    @classmethod
    def of(cls, columns: list[dict]) -> Signature:
        return cls(tuple(c["name"] for c in columns), tuple(c["dtype"] for c in columns))

    @property
    def numeric(self) -> bool:
        return all(d in NUMERIC for d in self.dtypes)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def parse_json(body: bytes):
    """orjson for speed; the standard library again for NaN and Infinity, which orjson
    refuses and which the value checks below then name precisely. Either way at most
    MAX_JSON_DEPTH levels deep: the checks and their messages walk what they are given."""
    if not body:
        raise InputError("the body is empty; send a JSON object", status=400)
    try:
        return json_loads(body)
    except TooDeep as exc:
        raise InputError(f"the body is {exc}", status=400) from None
    except orjson.JSONDecodeError:
        pass
    try:
        value = json.loads(body)
        check_depth(value)
    except TooDeep as exc:
        raise InputError(f"the body is {exc}", status=400) from None
    except RecursionError:  # deeper than the interpreter's own limit
        raise InputError(f"the body is nested more than {MAX_JSON_DEPTH} levels deep",
                         status=400) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not valid JSON: {exc}", status=400) from None
    return value


def split_binary(body: bytes, header_length: str):
    """A request of the binary tensor data extension: `header_length` bytes of JSON, then the
    raw bytes of each input whose `parameters.binary_data_size` says how many, in order. Each
    such input gets its values as a flat numpy array in `data`. Sizes are checked exactly
    (against the shape and the datatype, and the body's end): any mismatch is a 400."""
    field = HEADER_LENGTH
    if not header_length.isascii() or not header_length.isdigit() \
            or not 0 < int(header_length) <= len(body):
        raise InputError(f"{HEADER_LENGTH} must be the JSON header's length in bytes, between "
                         f"1 and the body's {len(body)}; got {header_length[:20]!r}",
                         status=400, field=field)
    end = int(header_length)
    payload = parse_json(body[:end])
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        return payload  # parse_v2 says what is wrong with it
    offset = end
    for index, tensor in enumerate(payload["inputs"]):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        where = f"inputs[{index}].parameters.binary_data_size"
        size = parameters["binary_data_size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InputError(f"{where} must be a whole number of bytes", status=400,
                             field=where)
        if "data" in tensor:
            raise InputError(f"inputs[{index}] has both data and binary_data_size: send one",
                             status=400, field=f"inputs[{index}]")
        chunk = body[offset:offset + size]
        if len(chunk) != size:
            raise InputError(f"{where} is {size} bytes, but the body ends {len(chunk)} bytes "
                             "after the previous input's: it is truncated", status=400,
                             field=where)
        offset += size
        tensor["data"] = _binary_values(tensor, chunk, index, where)
    if offset != len(body):
        raise InputError(f"{len(body) - offset} bytes after the last binary input: the inputs' "
                         f"binary_data_size and {HEADER_LENGTH} do not add up to the body",
                         status=400, field=field)
    return payload


def _binary_values(tensor: dict, chunk: bytes, index: int, where: str) -> np.ndarray:
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in V2_DATATYPES:
        raise InputError(f"inputs[{index}]: unknown datatype {datatype!r}", status=400,
                         field=f"inputs[{index}].datatype")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise InputError(f"inputs[{index}]: shape must be a list of whole numbers",
                         status=400, field=f"inputs[{index}].shape")
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(chunk, count, index, where)
    dtype = BINARY_DTYPES[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise InputError(f"{where} is {len(chunk)} bytes, but shape {shape} of {datatype} "
                         f"takes {count * dtype.itemsize}", status=400, field=where)
    values = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BOOL":
        if not np.isin(values, (0, 1)).all():
            raise InputError(f"inputs[{index}]: a BOOL element is a byte 0 or 1", status=400,
                             field=f"inputs[{index}]")
        values = values.astype(bool)
    return values


def _bytes_elements(chunk: bytes, count: int, index: int, where: str) -> np.ndarray:
    values, offset = [], 0
    while offset < len(chunk):
        if len(values) == count or offset + 4 > len(chunk):
            break
        length = int.from_bytes(chunk[offset:offset + 4], "little")
        element = chunk[offset + 4:offset + 4 + length]
        if len(element) != length:
            break
        try:
            values.append(element.decode())
        except UnicodeDecodeError:
            raise InputError(f"inputs[{index}]: element {len(values)} is not UTF-8 text",
                             status=400, field=f"inputs[{index}]") from None
        offset += 4 + length
    if len(values) != count or offset != len(chunk):
        raise InputError(f"{where}: the BYTES elements (a 4-byte length, then the bytes) do "
                         f"not fill {len(chunk)} bytes with {count} elements", status=400,
                         field=where)
    return np.array(values, dtype=object)


def _describe(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unknown(name: str, signature: Signature) -> str:
    close = difflib.get_close_matches(name, signature.names, n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown feature {name!r}{hint}"


def _check_value(value, dtype: str, row: int, name: str):
    if value is None:
        raise InputError(f"row {row}, feature {name!r}: a value is required, not null",
                         row=row, feature=name)
    if dtype in TEXT:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise InputError(f"row {row}, feature {name!r}: expected text, got "
                             f"{_describe(value)}", row=row, feature=name)
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL could not log it
            raise InputError(f"row {row}, feature {name!r}: text with a NUL character",
                             row=row, feature=name)
        return str(value)
    if dtype == "bool":
        if isinstance(value, bool) or value in (0, 1):
            return float(value)
        raise InputError(f"row {row}, feature {name!r}: expected true/false, got "
                         f"{_describe(value)}", row=row, feature=name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"row {row}, feature {name!r}: expected a number, got "
                         f"{_describe(value)}", row=row, feature=name)
    if not is_finite_number(value):
        raise InputError(f"row {row}, feature {name!r}: {_describe(value)} is not allowed "
                         "(finite numbers only)", row=row, feature=name)
    if abs(value) > LARGEST:
        raise InputError(f"row {row}, feature {name!r}: {_describe(value)} is beyond what a "
                         f"model takes (at most ±{LARGEST:.4g}, a float32's range)",
                         row=row, feature=name)
    if dtype in INTEGER and not float(value).is_integer():
        raise InputError(f"row {row}, feature {name!r}: expected a whole number, got "
                         f"{_describe(value)}", row=row, feature=name)
    return value


def _matrix(rows: list[list], signature: Signature, booleans: bool = True) -> np.ndarray:
    """Rows already in signature order; fast for all-numeric signatures, exact messages.

    numpy would read `true` as 1.0, so when the body may hold booleans (`booleans`; the
    caller knows from the raw bytes) every value is checked one by one.
    """
    width = len(signature.names)
    for r, row in enumerate(rows):
        if not isinstance(row, list):
            raise InputError(f"row {r}: expected a list of {width} values, got "
                             f"{_describe(row)}", row=r)
        if len(row) != width:
            raise InputError(f"row {r}: {len(row)} values, but the model takes {width} "
                             f"({', '.join(signature.names)})", row=r)
    if signature.numeric:
        try:
            # No dtype: numbers stay numbers and any text makes the array text, which the
            # check below sends to the value-by-value path (float64 would read "1.5" as 1.5).
            matrix = np.array(rows)
        except (TypeError, ValueError):
            matrix = None  # ragged or nested: find the offending value below
        if (matrix is not None and matrix.dtype.kind in "biuf" and np.isfinite(matrix).all()
                and (not matrix.size or np.abs(matrix).max() <= LARGEST)
                and not _bad_integers(matrix, signature)
                and not _bad_booleans(matrix, signature)
                and not (booleans and _has_bool(rows, signature))):
            return matrix.astype(np.float64, copy=False)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            _check_value(value, signature.dtypes[c], r, signature.names[c])
    if signature.numeric:
        return np.array(rows, dtype=np.float64)
    return np.array([[_check_value(v, signature.dtypes[c], r, signature.names[c])
                      for c, v in enumerate(row)] for r, row in enumerate(rows)], dtype=object)


def _bad_booleans(matrix: np.ndarray, signature: Signature) -> bool:
    columns = [i for i, d in enumerate(signature.dtypes) if d == "bool"]
    return bool(columns) and not np.isin(matrix[:, columns], (0, 1)).all()


def _has_bool(rows: list[list], signature: Signature) -> bool:
    columns = [i for i, d in enumerate(signature.dtypes) if d != "bool"]
    return any(isinstance(row[i], bool) for row in rows for i in columns)


def may_hold_booleans(body: bytes) -> bool:
    """Whether a JSON body can contain true/false at all (a fast scan of the bytes)."""
    return b"true" in body or b"false" in body


def _bad_integers(matrix: np.ndarray, signature: Signature) -> bool:
    columns = [i for i, d in enumerate(signature.dtypes) if d in INTEGER]
    return bool(columns) and not np.all(matrix[:, columns] == np.round(matrix[:, columns]))


def _records(records, signature: Signature, field: str) -> list[list]:
    if not isinstance(records, list):
        raise InputError(f"{field} must be a list of objects", status=400, field=field)
    position = signature.index()
    rows = []
    for r, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"row {r}: expected an object of feature values, got "
                             f"{_describe(record)}", row=r, field=f"{field}[{r}]")
        extra = [k for k in record if k not in position]
        if extra:
            raise InputError(f"row {r}: {_unknown(extra[0], signature)}", row=r,
                             feature=extra[0], field=f"{field}[{r}].{extra[0]}")
        if len(record) != len(position):
            missing = next(n for n in signature.names if n not in record)
            raise InputError(f"row {r}: missing feature {missing!r}", row=r, feature=missing,
                             field=f"{field}[{r}].{missing}")
        rows.append([record[name] for name in signature.names])
    return rows


def parse_rest(payload, signature: Signature, max_rows: int, booleans: bool = True
               ) -> np.ndarray:
    if not isinstance(payload, dict):
        raise InputError("the body must be a JSON object with one of: instances, inputs, "
                         "dataframe_split, dataframe_records", status=400)
    shapes = [k for k in ("instances", "inputs", "dataframe_split", "dataframe_records")
              if k in payload]
    if len(shapes) != 1:
        raise InputError("send exactly one of: instances, inputs, dataframe_split, "
                         "dataframe_records", status=400, field=shapes[1] if shapes else "body")
    shape = shapes[0]
    value = payload[shape]
    if payload.get("params") is not None and not isinstance(payload["params"], dict):
        raise InputError("params must be an object of parameter values", status=400,
                         field="params")
    if shape == "dataframe_records":
        rows = _records(value, signature, shape)
    elif shape in ("instances", "inputs"):
        rows = _tf_serving(value, signature, shape)
    else:
        if not isinstance(value, dict) or not isinstance(value.get("columns"), list) \
                or not isinstance(value.get("data"), list):
            raise InputError("dataframe_split needs 'columns' and 'data' lists", status=400,
                             field="dataframe_split")
        columns = value["columns"]
        if not all(isinstance(name, str) for name in columns):
            raise InputError("dataframe_split columns are feature names (text)", status=400,
                             field="dataframe_split.columns")
        position = signature.index()
        for name in columns:
            if name not in position:
                raise InputError(_unknown(str(name), signature), feature=str(name),
                                 field="dataframe_split")
        missing = [n for n in signature.names if n not in columns]
        if missing:
            raise InputError(f"missing feature {missing[0]!r}", feature=missing[0],
                             field="dataframe_split")
        if len(set(columns)) != len(columns):
            raise InputError("a column is named twice", field="dataframe_split")
        order = [columns.index(name) for name in signature.names]
        rows = []
        for r, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise InputError(f"row {r}: expected {len(columns)} values (one per column)",
                                 row=r, field="dataframe_split")
            rows.append([row[i] for i in order])
    _check_count(len(rows), max_rows, shape)
    return _located(rows, signature, booleans, shape)


def _tf_serving(value, signature: Signature, field: str) -> list[list]:
    """`instances` and `inputs` as MLflow's scoring server takes them (TF Serving's forms):
    rows in signature order, records (a list of objects), columns (an object of lists, one
    per feature), one record (an object of single values), or, for a one-feature model,
    a list of values."""
    if isinstance(value, dict):
        if all(isinstance(v, list) for v in value.values()) and value:
            return _columns(value, signature, field)
        if not any(isinstance(v, list | dict) for v in value.values()):
            return _records([value], signature, field)
        raise InputError(f"{field} as an object maps each feature to a list of its values "
                         "(all lists, of the same length)", status=400, field=field)
    if not isinstance(value, list):
        raise InputError(f"{field} must be a list of rows or records, or an object of "
                         "columns", status=400, field=field)
    if value and all(isinstance(v, dict) for v in value):
        return _records(value, signature, field)
    if len(signature.names) == 1 and value and not any(isinstance(v, list | dict)
                                                       for v in value):
        return [[v] for v in value]
    return value


def _columns(columns: dict, signature: Signature, field: str) -> list[list]:
    position = signature.index()
    for name in columns:
        if name not in position:
            raise InputError(_unknown(name, signature), feature=name, field=f"{field}.{name}")
    missing = [n for n in signature.names if n not in columns]
    if missing:
        raise InputError(f"missing feature {missing[0]!r}", feature=missing[0],
                         field=f"{field}.{missing[0]}")
    lengths = {len(columns[n]) for n in signature.names}
    if len(lengths) != 1:
        raise InputError("the columns have different lengths", status=400, field=field)
    return [list(row) for row in zip(*(columns[n] for n in signature.names), strict=True)]


@dataclass(frozen=True)
class CsvBody:
    """A `text/csv` body, as `pandas.DataFrame.to_csv()` writes it: typed by the signature
    when parsed (parse_mlflow)."""

    text: str


def _csv_value(text: str, dtype: str):
    if text == "":
        return None  # refused by the value check, naming the row and the feature
    if dtype in TEXT:
        return text
    if dtype == "bool" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text  # refused by the value check: "expected a number"


def parse_csv(body: CsvBody, signature: Signature, max_rows: int) -> np.ndarray:
    """A header row naming the features (in any order; an unnamed first column, pandas'
    index, is left out), then one line per row."""
    import csv

    reader = csv.reader(body.text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("the CSV body is empty: a header row naming the features, then "
                         "rows", status=400, field="body") from None
    except csv.Error as exc:
        raise InputError(f"the body is not valid CSV: {exc}", status=400) from None
    skip = 1 if header and header[0] == "" else 0
    columns = header[skip:]
    dtypes = dict(zip(signature.names, signature.dtypes, strict=True))
    for name in columns:
        if name not in dtypes:
            raise InputError(_unknown(name, signature), feature=name, field="body")
    data = []
    try:
        for number, line in enumerate(reader):
            if len(data) >= max_rows:
                _check_count(max_rows + 1, max_rows, "body")
            if len(line) != len(header):
                raise InputError(f"row {number}: {len(line)} values, but the header has "
                                 f"{len(header)}", status=400, row=number, field="body")
            data.append([_csv_value(v, dtypes[c]) for c, v in zip(columns, line[skip:],
                                                                   strict=True)])
    except csv.Error as exc:
        raise InputError(f"the body is not valid CSV: {exc}", status=400) from None
    try:
        return parse_rest({"dataframe_split": {"columns": columns, "data": data}}, signature,
                          max_rows, booleans=True)
    except InputError as exc:  # named as the body has it: a CSV, not a dataframe_split
        exc.field = exc.field.replace("dataframe_split", "body", 1)
        raise


def parse_mlflow(payload, signature: Signature, max_rows: int, booleans: bool = True
                 ) -> np.ndarray:
    """What MLflow's scoring server takes: a CSV body, or JSON in any of parse_rest's shapes."""
    if isinstance(payload, CsvBody):
        return parse_csv(payload, signature, max_rows)
    return parse_rest(payload, signature, max_rows, booleans)


def _located(rows, signature: Signature, booleans: bool, shape: str) -> np.ndarray:
    """The matrix; a refused value is named as the body has it: `instances[3].tenure`."""
    try:
        return _matrix(rows, signature, booleans)
    except InputError as exc:
        if exc.field == "body" and exc.row is not None:
            exc.field = f"{shape}[{exc.row}]" + (f".{exc.feature}" if exc.feature else "")
        raise


def _check_count(count: int, max_rows: int, field: str) -> None:
    if count == 0:
        raise InputError("the batch is empty: send at least one row", field=field)
    if count > max_rows:
        raise InputError(f"{count} rows is more than the limit of {max_rows} per request",
                         status=413, field=field)


def _flatten(data) -> list:
    if not isinstance(data, list):
        return [data]
    flat = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _tensor(tensor, index: int) -> tuple[str, list | np.ndarray, list[int], str]:
    if not isinstance(tensor, dict):
        raise InputError(f"inputs[{index}] must be an object", status=400, field="inputs")
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not isinstance(shape, list) \
            or not isinstance(data, list | np.ndarray):
        raise InputError(f"inputs[{index}] needs name, shape, datatype and a data list",
                         status=400, field="inputs")
    if datatype not in V2_DATATYPES:
        raise InputError(f"inputs[{index}]: unknown datatype {datatype!r}", status=400,
                         field="inputs")
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                            for d in shape):
        raise InputError(f"inputs[{index}]: shape must be a list of whole numbers",
                         status=400, field="inputs")
    flat = data if isinstance(data, np.ndarray) else _flatten(data)
    if len(flat) != math.prod(shape):  # exact: numpy's product wraps around on huge shapes
        raise InputError(f"inputs[{index}] ({name}): {len(flat)} values do not fill shape "
                         f"{shape}", status=400, field="inputs")
    return name, flat, shape, datatype


def _check_datatype(name: str, datatype: str, features, signature: Signature) -> None:
    """BOOL tensors feed `bool` features, BYTES tensors text features; numbers feed any."""
    allowed = {"BOOL": {"bool"}, "BYTES": TEXT}.get(datatype)
    if allowed is None:
        return
    dtypes = dict(zip(signature.names, signature.dtypes, strict=True))
    for feature in features:
        if dtypes[feature] not in allowed:
            kind = "numbers" if dtypes[feature] in NUMERIC else "text"
            raise InputError(f"tensor {name!r} is {datatype}, but feature {feature!r} takes "
                             f"{kind} ({dtypes[feature]}): send "
                             f"{'FP64, FP32 or INT64' if kind == 'numbers' else 'BYTES'}"
                             + (" (a tensor per feature for a model that mixes text and "
                                "numbers)" if datatype == "BYTES" and not signature.numeric
                                else ""),
                             feature=feature, field="inputs")


def _fast_matrix(values: np.ndarray, signature: Signature) -> np.ndarray | None:
    """A binary numeric [N, F] tensor straight to float64, when every value passes the checks
    `_matrix` makes (else None: the value-by-value path names the culprit)."""
    if values.dtype.kind not in "iuf":
        return None
    matrix = values.astype(np.float64)
    if (np.isfinite(matrix).all() and (not matrix.size or np.abs(matrix).max() <= LARGEST)
            and not _bad_integers(matrix, signature) and not _bad_booleans(matrix, signature)):
        return matrix
    return None


def parse_v2(payload, signature: Signature, max_rows: int, booleans: bool = True
             ) -> np.ndarray:
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) \
            or not payload["inputs"]:
        raise InputError("an inference request needs a non-empty 'inputs' list of tensors",
                         status=400, field="inputs")
    tensors = [_tensor(t, i) for i, t in enumerate(payload["inputs"])]
    width = len(signature.names)
    if len(tensors) == 1 and tensors[0][0] not in signature.index():
        name, flat, shape, datatype = tensors[0]
        if len(shape) != 2 or shape[1] != width:
            raise InputError(f"tensor {name!r} has shape {shape}; the model takes [N, {width}] "
                             f"({', '.join(signature.names)})", field="inputs")
        _check_datatype(name, datatype, signature.names, signature)
        _check_count(shape[0], max_rows, "inputs")
        if isinstance(flat, np.ndarray):
            matrix = _fast_matrix(flat.reshape(shape[0], width), signature)
            if matrix is not None:
                return matrix
            flat = flat.tolist()
        rows = [flat[i * width:(i + 1) * width] for i in range(shape[0])]
    else:
        by_name = {}
        for name, flat, shape, datatype in tensors:
            if name not in signature.index():
                raise InputError(_unknown(name, signature), feature=name, field="inputs")
            if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
                raise InputError(f"tensor {name!r} has shape {shape}; a per-feature tensor "
                                 "is [N] or [N, 1]", feature=name, field="inputs")
            _check_datatype(name, datatype, [name], signature)
            by_name[name] = flat.tolist() if isinstance(flat, np.ndarray) else flat
        missing = [n for n in signature.names if n not in by_name]
        if missing:
            raise InputError(f"missing feature {missing[0]!r}", feature=missing[0],
                             field="inputs")
        lengths = {len(v) for v in by_name.values()}
        if len(lengths) != 1:
            raise InputError("the per-feature tensors have different lengths", field="inputs")
        rows = [list(values) for values in zip(*(by_name[n] for n in signature.names),
                                               strict=True)]
    _check_count(len(rows), max_rows, "inputs")
    return _located(rows, signature, booleans, "inputs")
