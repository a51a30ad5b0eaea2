"""The OpenAPI description of the prediction endpoints' bodies.

These views parse their own bodies (orjson, no DRF parser), so drf-spectacular cannot see a
request body: it is declared here, as JSON Schema, with examples. The shapes are what
predictions/inputs.py accepts; a body that fits the schema may still be refused (422) when
its rows do not fit the version's signature, which the schema cannot know.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

ROW = {"type": "array", "items": {}, "description": "One row: values in signature order."}
RECORD = {"type": "object", "additionalProperties": True,
          "description": "One row: feature name -> value."}
ERROR = OpenApiResponse(description='The API\'s error body: {"detail", "code", "errors"}')

PREDICT_REQUEST = {
    "type": "object",
    "description": "Rows to predict on, in exactly one of MLflow's four shapes.",
    "properties": {
        "instances": {"type": "array", "items": {"oneOf": [RECORD, ROW]},
                      "description": "Rows as records (feature -> value) or as lists."},
        "inputs": {"type": "array", "items": ROW,
                   "description": "Rows as lists, in signature order."},
        "dataframe_split": {
            "type": "object", "required": ["columns", "data"],
            "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                           "data": {"type": "array", "items": ROW},
                           "index": {"type": "array", "items": {}}},
            "description": "pandas' DataFrame.to_json(orient='split')."},
        "dataframe_records": {"type": "array", "items": RECORD,
                              "description": "pandas' DataFrame.to_json(orient='records')."},
    },
    "minProperties": 1,
    "maxProperties": 1,
}
PREDICT_RESPONSE = {
    "type": "object",
    "required": ["model", "version", "predictions", "request_id", "routed_to"],
    "properties": {
        "model": {"type": "string"},
        "version": {"type": "string"},
        "predictions": {"type": "array", "items": {}},
        "probabilities": {"type": "array", "items": {"type": "array",
                                                     "items": {"type": "number"}},
                          "description": "Per row, per class; only for models that have them."},
        "request_id": {"type": "string", "description": "Send feedback for it later."},
        "routed_to": {"type": "string", "description": "production, or canary."},
    },
}
PREDICT_EXAMPLES = [
    OpenApiExample("instances", value={"instances": [{"tenure": 12, "visits": 3}]},
                   request_only=True),
    OpenApiExample("inputs (signature order)", value={"inputs": [[12, 3], [40, 0]]},
                   request_only=True),
    OpenApiExample("dataframe_split", value={"dataframe_split": {
        "columns": ["tenure", "visits"], "data": [[12, 3]]}}, request_only=True),
    OpenApiExample("dataframe_records", value={"dataframe_records": [{"tenure": 12,
                                                                      "visits": 3}]},
                   request_only=True),
]
PREDICT_DOC = dict(
    request={"application/json": PREDICT_REQUEST},
    examples=PREDICT_EXAMPLES,
    parameters=[OpenApiParameter("X-Routing-Key", str, OpenApiParameter.HEADER,
                                 description="Sticky canary routing: the same key gets the "
                                 "same version.")],
    responses={
        200: OpenApiResponse(PREDICT_RESPONSE, description="The predictions"),
        400: OpenApiResponse(description="Malformed body"),
        404: ERROR,
        409: OpenApiResponse(description="The version cannot serve (integrity, validation)"),
        413: OpenApiResponse(description="Body or batch over the limit"),
        422: OpenApiResponse(description="A row the model cannot take (row and feature named)"),
        429: OpenApiResponse(description="Over the hourly quota (Retry-After)"),
    },
)

FEEDBACK_REQUEST = {
    "type": "object",
    "required": ["feedback"],
    "properties": {"feedback": {
        "type": "array", "minItems": 1,
        "items": {"type": "object", "required": ["row", "actual"],
                  "additionalProperties": False,
                  "properties": {"row": {"type": "integer", "minimum": 0,
                                         "description": "The row's index in the request."},
                                 "actual": {"description": "What really happened: a finite "
                                            "number or a class label."}}}}},
}
FEEDBACK_DOC = dict(
    request={"application/json": FEEDBACK_REQUEST},
    examples=[OpenApiExample("two rows", value={"feedback": [{"row": 0, "actual": 1},
                                                             {"row": 1, "actual": 0}]},
                             request_only=True)],
    responses={
        201: OpenApiResponse({"type": "object", "required": ["request_id", "recorded"],
                              "properties": {"request_id": {"type": "string"},
                                             "recorded": {"type": "integer"}}},
                             description="Recorded"),
        400: ERROR, 404: ERROR, 409: ERROR,
    },
)

TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
                                                "INT8", "INT16", "INT32", "INT64", "FP16",
                                                "FP32", "FP64", "BYTES"]},
        "parameters": {"type": "object", "additionalProperties": True},
        "data": {"type": "array", "items": {},
                 "description": "Row-major, flat or nested as the shape says."},
    },
}
INFER_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "description": "The Open Inference Protocol's inference request (JSON).",
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "additionalProperties": True},
        "inputs": {"type": "array", "minItems": 1, "items": TENSOR,
                   "description": "One [rows, features] tensor, or one [rows] tensor per "
                   "feature named as the signature names it."},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "enum": ["predict", "predict_proba"]},
                           "parameters": {"type": "object", "additionalProperties": True}}}},
    },
}
INFER_RESPONSE = {
    "type": "object",
    "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object", "additionalProperties": True},
        "outputs": {"type": "array", "items": TENSOR},
    },
}
INFER_DOC = dict(
    request={"application/json": INFER_REQUEST},
    examples=[OpenApiExample("one batch", request_only=True, value={
        "id": "42", "inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                                "data": [12, 3, 0, 40, 0, 1]}]})],
    responses={200: OpenApiResponse(INFER_RESPONSE, description="The inference response"),
               400: OpenApiResponse(OpenApiTypes.OBJECT, description='{"error": ...}'),
               404: OpenApiResponse(OpenApiTypes.OBJECT, description='{"error": ...}'),
               422: OpenApiResponse(OpenApiTypes.OBJECT, description='{"error": ...}')},
)
