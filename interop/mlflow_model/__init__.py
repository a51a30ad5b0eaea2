"""What a version looks like to MLflow: a model directory served file by file (see
interop.model_dir). `governance_pyfunc.py` is shipped *inside* that directory, as text: the
client imports it, not the server."""
