"""Request bodies to tables and predictions to response bodies, for the three ways in:

- Open Inference Protocol v2 (KServe / Triton REST): one named input tensor per column, as
  JSON ``data`` or, with the binary tensor extension, raw bytes after the JSON header;
- MLflow's scoring format (``/invocations``): ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs``;
- plain JSON records (``/predict``): a list of objects, or ``{"records": [...]}``.

Every malformed body raises ``BadRequest`` with what is wrong; nothing here touches a model.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pandas as pd

from mlre.data.contract import SMALL_ROWS
from mlre.spec import Task
from mlre.values import plain

#: v2 datatypes and the numpy types their binary data is read as.
_V2_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


class BadRequest(Exception):
    """A request the service cannot read; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, column: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.column = column


#: At most this many distinct columns in one request (a column bomb of thousands of unknown
#: keys is refused before any table is built of it).
MAX_COLUMNS = 1_000


def parse_json(body: bytes) -> Any:
    """The JSON of a body, or BadRequest saying where it breaks: malformed text, nesting too
    deep for the parser, an integer of thousands of digits, Infinity (numbers beyond a
    float's range are refused with the table's cells: ``validation.bad_cell``)."""
    if not body:
        raise BadRequest("the request has no body; send JSON")
    try:
        return json.loads(body, parse_constant=_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise BadRequest("the body is not valid JSON: it is nested too deeply") from None
    except ValueError as err:  # e.g. an integer past Python's digit limit
        raise BadRequest(f"the body is not valid JSON: {err}") from None


def _constant(name: str) -> float:
    # JSON has no NaN or Infinity; Python's parser accepts them: a NaN is read as a missing
    # value (what clients mean by it), an infinity is refused
    if name == "NaN":
        return float("nan")
    raise BadRequest(f"the body holds {name}, which is not a JSON number", status=422)


def _column_names(columns: Any, where: str) -> list[str]:
    """A table's column names: a list of distinct strings, at most ``MAX_COLUMNS``."""
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest(f"{where} columns must be a list of column names (strings)")
    if len(columns) > MAX_COLUMNS:
        raise BadRequest(f"{where} has {len(columns):,} columns; the limit is {MAX_COLUMNS:,}",
                         status=413)  # fmt: skip
    if len(set(columns)) != len(columns):
        twice = next(c for i, c in enumerate(columns) if c in columns[:i])
        raise BadRequest(f"{where} names column {twice!r} twice", column=twice)
    return columns


def _check_records(rows: list[Any], where: str) -> None:
    """Records' keys: strings (JSON object keys always are), at most ``MAX_COLUMNS`` distinct."""
    names: set[str] = set()
    for record in rows:
        if isinstance(record, dict):
            names.update(record)
            if len(names) > MAX_COLUMNS:
                raise BadRequest(f"{where} names more than {MAX_COLUMNS:,} distinct columns",
                                 status=413)  # fmt: skip


def _table(rows: Any, columns: list[str] | None = None, where: str = "the body") -> pd.DataFrame:
    # up to SMALL_ROWS rows a request becomes a table of the values as JSON gave them (object
    # columns), built in tens of microseconds; pandas' type inference costs about a millisecond
    # a request whatever its size. The model's first step gives each column its contract type.
    if isinstance(rows, list) and 0 < len(rows) <= SMALL_ROWS:
        frame = _small_table(rows, columns)
        if frame is not None:
            return frame
    try:
        frame = pd.DataFrame(rows, columns=columns)
    except (ValueError, TypeError) as err:
        raise BadRequest(f"{where} is not a table: {err}") from None
    if frame.empty:
        raise BadRequest(f"{where} has no rows")
    return frame


def _small_table(rows: list[Any], columns: list[str] | None) -> pd.DataFrame | None:
    """A few records (``{column: value}``) or rows of a ``columns`` list as an object table
    (a key a record lacks is missing, as pandas reads it), or None for any other shape."""
    if columns is None:
        if not all(isinstance(r, dict) for r in rows):
            return None
        names = list(dict.fromkeys(k for r in rows for k in r))
        values = np.empty((len(rows), len(names)), dtype=object)
        for i, record in enumerate(rows):
            for j, name in enumerate(names):
                values[i, j] = record.get(name, np.nan)
    else:
        if not isinstance(columns, list) or len(set(map(str, columns))) != len(columns):
            return None
        if not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            return None
        names = columns
        values = np.empty((len(rows), len(names)), dtype=object)
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                values[i, j] = value  # one by one: a nested list stays one cell
    if not names:
        return None
    return object_table(values, names)


def object_table(values: Any, columns: list[Any]) -> pd.DataFrame:
    """Rows of values as they are, in object columns: no type inference (pandas would make text
    and number columns of them); the model's first step gives each column its contract type."""
    return pd.DataFrame(values, columns=pd.Index(columns, dtype=object), dtype=object, copy=False)


def records_frame(payload: Any) -> pd.DataFrame:
    """``/predict``: ``[{col: value}, ...]``, one object, or ``{"records": [...]}``."""
    if isinstance(payload, dict) and "records" in payload:
        payload = payload["records"]
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise BadRequest(
            'send a JSON list of records ({"column": value, ...}) or {"records": [...]}'
        )
    _check_records(payload, "records")
    return _table(payload, where="records")


def mlflow_frame(payload: Any) -> pd.DataFrame:
    """``/invocations`` in MLflow's scoring format."""
    if not isinstance(payload, dict):
        raise BadRequest(
            "send a JSON object with one of dataframe_split, dataframe_records, instances, inputs"
        )
    keys = [
        k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in payload
    ]
    if len(keys) != 1:
        raise BadRequest(
            "the body needs exactly one of dataframe_split, dataframe_records, instances, inputs"
            + (f" (found {', '.join(keys)})" if keys else "")
        )
    key, value = keys[0], payload[keys[0]]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise BadRequest('dataframe_split needs {"columns": [...], "data": [[...], ...]}')
        columns = value.get("columns")
        if columns is not None:
            columns = _column_names(columns, "dataframe_split")
        if not isinstance(value["data"], list):
            raise BadRequest("dataframe_split data must be a list of rows")
        return _table(value["data"], columns, "dataframe_split")
    if isinstance(value, dict):  # columnar: {"col": [values]}
        _check_records([value], key)
        try:
            return _table(value, where=key)
        except BadRequest:
            return _table([value], where=key)
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise BadRequest(f'{key} must be a list of records ({{"column": value, ...}})')
    _check_records(value, key)
    return _table(value, where=key)


def v2_frame(body: bytes, header_length: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A v2 inference request: each input tensor is one column (KServe's pandas convention).

    ``header_length`` is the ``Inference-Header-Content-Length`` of the binary tensor extension:
    the JSON header is that many bytes, the tensors' raw bytes follow in input order.
    """
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise BadRequest("Inference-Header-Content-Length is larger than the body")
        payload, binary = parse_json(body[:header_length]), body[header_length:]
    else:
        payload, binary = parse_json(body), b""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise BadRequest('a v2 request is {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
    if not payload["inputs"]:
        raise BadRequest("the request has no inputs")
    if "id" in payload and not isinstance(payload["id"], str):
        raise BadRequest("a v2 request's id must be a string")
    if len(payload["inputs"]) > MAX_COLUMNS:
        raise BadRequest(f"the request has {len(payload['inputs']):,} inputs; the limit is "
                         f"{MAX_COLUMNS:,}", status=413)  # fmt: skip
    columns: dict[str, np.ndarray] = {}
    offset = 0
    rows: int | None = None
    for i, tensor in enumerate(payload["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise BadRequest(f"input {i} has no name")
        name, datatype = tensor["name"], str(tensor.get("datatype", "")).upper()
        if name in columns:
            raise BadRequest(f"input {name!r} is sent twice", column=name)
        shape = tensor.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and d >= 0 for d in shape)
        ):
            raise BadRequest(
                f"input {name!r} needs a shape such as [rows] or [rows, 1]", column=name
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise BadRequest(
                f"input {name!r} has shape {shape}: send one input per column, shape [rows]",
                column=name,
            )
        count = shape[0]
        parameters = tensor.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise BadRequest(f"input {name!r} has parameters that are not an object", column=name)
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(f"input {name!r} needs binary_data_size as a number of bytes",
                                 column=name)  # fmt: skip
            values, offset = _binary_tensor(name, datatype, count, binary, offset, size)
        else:
            if "data" not in tensor:
                raise BadRequest(f"input {name!r} has no data", column=name)
            values = np.asarray(_flat(tensor["data"]), dtype=object)
            if len(values) != count:
                raise BadRequest(
                    f"input {name!r} has {len(values)} values for shape {shape}", column=name
                )
            values = _typed(name, datatype, values)
        if rows is not None and count != rows:
            raise BadRequest(f"input {name!r} has {count} rows, the others {rows}", column=name)
        rows = count
        columns[name] = values
    if not rows:
        raise BadRequest("the request has no rows")
    return pd.DataFrame(columns), payload


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [v for row in data for v in (row if isinstance(row, list) else [row])]
    return data if isinstance(data, list) else [data]


def _typed(name: str, datatype: str, values: np.ndarray) -> np.ndarray:
    if datatype == "BYTES":
        return np.array(
            [v if v is None or isinstance(v, str) else str(v) for v in values], dtype=object
        )
    if datatype in _V2_NUMPY:
        try:
            if datatype == "BOOL":
                return np.array([None if v is None else bool(v) for v in values], dtype=object)
            if datatype.startswith("FP") or any(v is None for v in values):
                out = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
                if np.isinf(out).any():
                    raise OverflowError
                return out
            return np.array([int(v) for v in values], dtype=np.int64)
        except OverflowError:
            raise BadRequest(
                f"input {name!r} holds a value beyond the range of {datatype}",
                status=422,
                column=name,
            ) from None
        except (TypeError, ValueError):
            raise BadRequest(
                f"input {name!r} is declared {datatype} but holds values that are not numbers",
                status=422,
                column=name,
            ) from None
    raise BadRequest(f"input {name!r} has an unknown datatype {datatype!r}", column=name)


def _binary_tensor(
    name: str, datatype: str, count: int, binary: bytes, offset: int, size: int
) -> tuple[np.ndarray, int]:
    chunk = binary[offset : offset + size]
    if len(chunk) != size:
        raise BadRequest(
            f"input {name!r} declares {size} bytes but the body is shorter", column=name
        )
    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the bytes
        out, pos = [], 0
        while pos < size:
            if pos + 4 > size:
                raise BadRequest(f"input {name!r} has a truncated BYTES element", column=name)
            (n,) = struct.unpack_from("<I", chunk, pos)
            out.append(chunk[pos + 4 : pos + 4 + n].decode("utf-8", errors="replace"))
            pos += 4 + n
        values = np.array(out, dtype=object)
    elif datatype in _V2_NUMPY:
        dtype = np.dtype(_V2_NUMPY[datatype]).newbyteorder("<")
        if size % dtype.itemsize:
            raise BadRequest(
                f"input {name!r} has {size} bytes, not a whole number of {datatype}", column=name
            )
        values = np.frombuffer(chunk, dtype=dtype)
        values = values.astype(float if datatype.startswith("FP") else np.int64)
        if datatype == "BOOL":
            values = values.astype(bool)
    else:
        raise BadRequest(f"input {name!r} has an unknown datatype {datatype!r}", column=name)
    if len(values) != count:
        raise BadRequest(
            f"input {name!r} has {len(values)} values, its shape says {count}", column=name
        )
    return values, offset + size


# --------------------------------------------------------------------------- responses


def records_response(
    task: Task, classes: list[Any] | None, out: np.ndarray
) -> list[dict[str, Any]]:
    """One object per row: the prediction and, for classification, each class's probability."""
    if task == "regression":
        return [{"prediction": float(v)} for v in out]
    labels = [plain(c) for c in classes or []]
    best = out.argmax(axis=1)
    return [
        {
            "prediction": labels[int(k)],
            "probabilities": dict(zip(map(str, labels), map(float, row), strict=True)),
        }
        for k, row in zip(best, out, strict=True)
    ]


def mlflow_response(task: Task, classes: list[Any] | None, out: np.ndarray) -> dict[str, Any]:
    """MLflow's answer for a table output: ``{"predictions": [records]}`` with mlre's columns."""
    if task == "regression":
        return {"predictions": [{"prediction": float(v)} for v in out]}
    labels = [plain(c) for c in classes or []]
    rows = []
    for row in out:
        record: dict[str, Any] = {"prediction": labels[int(row.argmax())]}
        for c, p in zip(labels, row, strict=True):
            record[f"proba_{c}"] = float(p)
        rows.append(record)
    return {"predictions": rows}


def v2_response(
    name: str,
    version: str,
    request_id: str | None,
    task: Task,
    classes: list[Any] | None,
    out: np.ndarray,
) -> dict[str, Any]:
    """A v2 answer: ``predict`` (labels or values) and, for classification, ``probabilities``
    (rows x classes, the class order in the parameters)."""
    n = len(out)
    outputs: list[dict[str, Any]]
    if task == "regression":
        outputs = [
            {"name": "predict", "shape": [n], "datatype": "FP64", "data": [float(v) for v in out]}
        ]
    else:
        labels = [plain(c) for c in classes or []]
        predicted = [labels[int(k)] for k in out.argmax(axis=1)]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels)
        outputs = [
            {
                "name": "predict",
                "shape": [n],
                "datatype": "INT64"
                if numeric and all(isinstance(v, int) for v in labels)
                else ("FP64" if numeric else "BYTES"),
                "data": predicted if numeric else [str(v) for v in predicted],
            },
            {
                "name": "probabilities",
                "shape": [n, len(labels)],
                "datatype": "FP64",
                "data": [float(v) for v in out.ravel()],
                "parameters": {"classes": [str(c) for c in labels]},
            },
        ]
    body: dict[str, Any] = {"model_name": name, "model_version": str(version), "outputs": outputs}
    if request_id is not None:
        body["id"] = request_id
    return body
