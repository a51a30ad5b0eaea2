"""Interoperability: the APIs other tools already speak, answered from our registry.

Today: MLflow's Model Registry REST API (`/api/2.0/mlflow/...`) and its proxied artifact
download (`/api/2.0/mlflow-artifacts/artifacts/...`), so `MlflowClient` and
`mlflow.pyfunc.load_model("models:/<name>@champion")` work against this server.
"""
