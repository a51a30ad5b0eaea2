"""Demo data: the five library-analytics models of the source documents, trained for real.

Each model is trained on synthetic data generated here (seeded, so every run gives the same
numbers), evaluated on a held-out split, and registered through the same service as an API
upload. `DemoVersion.stage` says where the demo wants it; governance's `seed_demo` gets it
there through validation, requests, approvals and deployments.
"""

from __future__ import annotations

import csv
import io
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

import joblib
import numpy as np

RNG_SEED = 20261122
AUTHOR = "Dana Scientist"


@dataclass
class DemoVersion:
    version: str
    stage: str
    algorithm: str
    description: str
    changelog: list[str]
    # data -> (model bytes, held-out metrics, hyperparameters, [(preprocessor name, bytes)],
    #          (held-out rows, their labels or None))
    train: Callable[[dict], tuple[bytes, dict, dict, list[tuple[str, bytes]], tuple]]
    tags: list[str] = field(default_factory=list)
    # Leave a promotion request waiting for an approver (the demo's approvals queue).
    pending_request: bool = False


@dataclass
class DemoModel:
    name: str
    task_type: str
    description: str
    features: list[str]
    target: str
    dataset: Callable[[np.random.Generator], dict]
    versions: list[DemoVersion]
    framework: str = "sklearn"
    tags: list[str] = field(default_factory=list)


def _split(X, y, rng, test_fraction=0.25):
    index = rng.permutation(len(X))
    cut = int(len(X) * (1 - test_fraction))
    train, test = index[:cut], index[cut:]
    return X[train], X[test], y[train], y[test]


def _dump(obj) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def _classification_metrics(model, X_test, y_test, transform=None) -> dict:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    X = transform(X_test) if transform else X_test
    predicted = model.predict(X)
    scores = model.predict_proba(X)[:, 1]
    return {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "precision": round(float(precision_score(y_test, predicted, zero_division=0)), 4),
        "recall": round(float(recall_score(y_test, predicted, zero_division=0)), 4),
        "f1_score": round(float(f1_score(y_test, predicted, zero_division=0)), 4),
        "auc_roc": round(float(roc_auc_score(y_test, scores)), 4),
    }


def _params(model, keys) -> dict:
    params = model.get_params()
    return {key: params[key] for key in keys if key in params}


# --- datasets ---------------------------------------------------------------------------------


def overdue_dataset(rng) -> dict:
    n = 4000
    past_overdues = rng.poisson(1.2, n)
    tenure_days = rng.integers(30, 3650, n)
    loans_90d = rng.poisson(4, n)
    popularity = rng.beta(2, 5, n)
    duration = rng.choice([7, 14, 21, 28], n)
    month = rng.integers(1, 13, n)
    holiday = np.isin(month, [7, 8, 12]).astype(int)
    # Non-linear on purpose (thresholds, interactions), so that trees beat the linear baseline.
    logit = (-2.0 + 0.35 * past_overdues - 0.0003 * tenure_days + 0.05 * loans_90d
             + 2.5 * (popularity > 0.45) - 0.03 * duration + 0.3 * holiday
             + 2.2 * (past_overdues >= 2) * holiday - 1.5 * (tenure_days > 2500) * (loans_90d < 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = np.column_stack([past_overdues, tenure_days, loans_90d, popularity, duration, month,
                         holiday]).astype(float)
    return {"X": X, "y": y}


def churn_dataset(rng) -> dict:
    n = 4000
    days_since_visit = rng.exponential(40, n)
    loans_per_month = rng.gamma(2.0, 1.5, n)
    late_returns = rng.poisson(0.8, n)
    membership_months = rng.integers(1, 120, n)
    fines = rng.exponential(3, n) * (late_returns > 0)
    logit = (-1.0 + 0.035 * days_since_visit - 0.45 * loans_per_month + 0.25 * late_returns
             - 0.012 * membership_months + 0.05 * fines)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = np.column_stack([days_since_visit, loans_per_month, late_returns, membership_months,
                         fines])
    return {"X": X, "y": y}


def recommendation_dataset(rng) -> dict:
    n = 5000
    genre_affinity = rng.beta(2, 2, n)
    author_affinity = rng.beta(1.5, 3, n)
    cf_score = np.clip(0.6 * genre_affinity + rng.normal(0, 0.2, n), 0, 1)
    content_similarity = rng.beta(2, 3, n)
    popularity = rng.beta(2, 5, n)
    member_activity = rng.gamma(2, 1, n)
    logit = (-3 + 2.2 * genre_affinity + 1.8 * author_affinity + 2.5 * cf_score * content_similarity
             + 0.8 * popularity + 0.15 * member_activity)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = np.column_stack([genre_affinity, author_affinity, cf_score, content_similarity,
                         popularity, member_activity])
    return {"X": X, "y": y}


def segmentation_dataset(rng) -> dict:
    centres = np.array([[5, 20, 300, 0.9], [30, 8, 120, 0.6], [120, 2, 30, 0.2],
                        [10, 3, 40, 0.5], [200, 1, 10, 0.05]])
    labels = rng.integers(0, len(centres), 3000)
    noise = rng.normal(0, 1, (3000, 4)) * np.array([8, 2, 40, 0.1])
    X = np.abs(centres[labels] + noise)
    return {"X": X, "y": labels}


def demand_dataset(rng) -> dict:
    weeks = 520
    t = np.arange(weeks + 13)
    series = (120 + 0.05 * t + 25 * np.sin(2 * np.pi * t / 52) + 10 * np.sin(2 * np.pi * t / 13)
              + rng.normal(0, 6, len(t)))
    windows = np.stack([series[i:i + 12] for i in range(len(series) - 12)])
    return {"X": windows[:, :12].astype(np.float32), "y": series[12:].astype(np.float32)}


# --- trainers ---------------------------------------------------------------------------------


def _sklearn_classifier(build, keys):
    def train(data):
        rng = np.random.default_rng(RNG_SEED)
        X_train, X_test, y_train, y_test = _split(data["X"], data["y"], rng)
        model = build().fit(X_train, y_train)
        return (_dump(model), _classification_metrics(model, X_test, y_test),
                _params(model, keys), [], (X_test, y_test))

    return train


def _naive_bayes_with_scaler(data):
    from sklearn.naive_bayes import GaussianNB
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(RNG_SEED)
    X_train, X_test, y_train, y_test = _split(data["X"], data["y"], rng)
    scaler = StandardScaler().fit(X_train)
    model = GaussianNB().fit(scaler.transform(X_train), y_train)
    metrics = _classification_metrics(model, X_test, y_test, transform=scaler.transform)
    return (_dump(model), metrics, {"var_smoothing": 1e-9}, [("scaler.pkl", _dump(scaler))],
            (X_test, y_test))


def _kmeans(k):
    def train(data):
        from sklearn.cluster import KMeans
        from sklearn.metrics import calinski_harabasz_score, silhouette_score
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(RNG_SEED)
        X_train, X_test, _, _ = _split(data["X"], data["y"], rng)
        model = Pipeline([("scale", StandardScaler()),
                          ("kmeans", KMeans(n_clusters=k, n_init=10, random_state=0))])
        model.fit(X_train)
        labels = model.predict(X_test)
        scaled = model[:-1].transform(X_test)
        metrics = {
            "silhouette": round(float(silhouette_score(scaled, labels)), 4),
            "calinski_harabasz": round(float(calinski_harabasz_score(scaled, labels)), 2),
            "inertia": round(float(model[-1].inertia_), 2),
            "n_clusters": k,
        }
        # Clusters have no labels to measure against.
        return _dump(model), metrics, {"n_clusters": k, "n_init": 10}, [], (X_test, None)

    return train


def _lstm(hidden, epochs):
    def train(data):
        import torch

        torch.manual_seed(0)
        rng = np.random.default_rng(RNG_SEED)
        X, y = data["X"], data["y"]
        cut = int(len(X) * 0.8)  # time order kept: the test split is the most recent weeks
        X_train, X_test, y_train, y_test = X[:cut], X[cut:], y[:cut], y[cut:]
        mean, std = float(X_train.mean()), float(X_train.std())

        class DemandLSTM(torch.nn.Module):
            def __init__(self, hidden_size: int, mean: float, std: float):
                super().__init__()
                self.mean = mean
                self.std = std
                self.lstm = torch.nn.LSTM(1, hidden_size, batch_first=True)
                self.head = torch.nn.Linear(hidden_size, 1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                z = ((x - self.mean) / self.std).unsqueeze(-1)
                out, _ = self.lstm(z)
                return self.head(out[:, -1, :]) * self.std + self.mean

        model = DemandLSTM(hidden, mean, std)
        optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
        Xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train).unsqueeze(1)
        for _ in range(epochs):
            for batch in np.array_split(rng.permutation(len(Xt)), 8):
                optimiser.zero_grad()
                loss = torch.nn.functional.mse_loss(model(Xt[batch]), yt[batch])
                loss.backward()
                optimiser.step()
        model.eval()
        with torch.no_grad():
            predicted = model(torch.from_numpy(X_test)).squeeze(1).numpy()
        errors = predicted - y_test
        mape = float(np.mean(np.abs(errors) / np.abs(y_test)))
        metrics = {
            "mae": round(float(np.mean(np.abs(errors))), 3),
            "rmse": round(float(np.sqrt(np.mean(errors ** 2))), 3),
            "mape": round(mape, 4),
            "accuracy": round(1 - mape, 4),
        }
        import warnings

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(model), buffer)
        params = {"hidden_size": hidden, "epochs": epochs, "window": 12, "lr": 0.01}
        return buffer.getvalue(), metrics, params, [], (X_test, y_test)

    return train


def catalogue() -> list[DemoModel]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        DemoModel(
            name="overdue_prediction",
            task_type="classification",
            description="Predicts the likelihood that a loan is returned late.",
            features=["member_past_overdues", "member_tenure_days", "loans_last_90d",
                      "book_popularity", "loan_duration_days", "month", "is_holiday_season"],
            target="returned_late",
            dataset=overdue_dataset,
            tags=["loans", "risk"],
            versions=[
                DemoVersion("0.9.2", "archived", "LogisticRegression",
                            "Baseline logistic regression on member history and book "
                            "popularity (loan terms and season not used).", ["Baseline"],
                            _sklearn_classifier(
                                lambda: make_pipeline(
                                    ColumnTransformer([("member_and_book", "passthrough",
                                                        [0, 1, 2, 3])]),
                                    StandardScaler(), LogisticRegression(max_iter=500)),
                                []), tags=["baseline"]),
                DemoVersion("1.0.0", "production", "RandomForestClassifier",
                            "Random forest on member history, popularity and season.",
                            ["Logistic regression replaced by a random forest",
                             "Seasonal interaction features"],
                            _sklearn_classifier(
                                lambda: RandomForestClassifier(n_estimators=100, max_depth=8,
                                                               random_state=42, n_jobs=1),
                                ["n_estimators", "max_depth", "random_state"])),
                # Slightly worse than 1.0.0 on four metrics, each within the default
                # policy's tolerance: the approvals queue shows the amber regression flag.
                DemoVersion("1.1.0", "staging", "RandomForestClassifier",
                            "Deeper forest with more trees and larger leaves, waiting for "
                            "approval.",
                            ["n_estimators 100 -> 200", "max_depth 8 -> 16",
                             "min_samples_leaf 1 -> 10"],
                            _sklearn_classifier(
                                lambda: RandomForestClassifier(n_estimators=200, max_depth=16,
                                                               min_samples_leaf=10,
                                                               random_state=42, n_jobs=1),
                                ["n_estimators", "max_depth", "min_samples_leaf",
                                 "random_state"]),
                            pending_request=True),
            ],
        ),
        DemoModel(
            name="churn_prediction",
            task_type="classification",
            description="Identifies members at risk of leaving.",
            features=["days_since_last_visit", "loans_per_month", "late_returns",
                      "membership_months", "fines_outstanding"],
            target="churned",
            dataset=churn_dataset,
            tags=["members", "retention"],
            versions=[
                DemoVersion("0.7.3", "archived", "GaussianNB",
                            "Naive Bayes with a separate scaler.pkl preprocessor.",
                            ["First model"], _naive_bayes_with_scaler, tags=["baseline"]),
                DemoVersion("1.0.0", "production", "GradientBoostingClassifier",
                            "Gradient boosting on visit and loan behaviour.",
                            ["Naive Bayes replaced by gradient boosting"],
                            _sklearn_classifier(
                                lambda: GradientBoostingClassifier(n_estimators=100,
                                                                   random_state=42),
                                ["n_estimators", "learning_rate", "max_depth"])),
                DemoVersion("1.1.0", "experiment", "GradientBoostingClassifier",
                            "More, shallower trees with a lower learning rate.",
                            ["n_estimators 100 -> 300", "learning_rate 0.1 -> 0.05"],
                            _sklearn_classifier(
                                lambda: GradientBoostingClassifier(
                                    n_estimators=300, learning_rate=0.05, max_depth=2,
                                    random_state=42),
                                ["n_estimators", "learning_rate", "max_depth"])),
            ],
        ),
        DemoModel(
            name="recommendation_engine",
            task_type="ranking",
            description="Scores how likely a member is to borrow a book (hybrid collaborative "
            "filtering and content-based features); ranks candidate books by that score.",
            features=["genre_affinity", "author_affinity", "cf_score", "content_similarity",
                      "book_popularity", "member_activity"],
            target="borrowed",
            dataset=recommendation_dataset,
            tags=["books", "personalisation"],
            versions=[
                DemoVersion("1.0.0", "production", "HistGradientBoostingClassifier",
                            "Hybrid collaborative filtering + content-based scorer.",
                            ["Hybrid scorer"],
                            _sklearn_classifier(
                                lambda: HistGradientBoostingClassifier(random_state=42),
                                ["learning_rate", "max_iter"])),
                DemoVersion("1.2.0", "staging", "MLPClassifier",
                            "Neural scorer over the same hybrid features.",
                            ["Neural collaborative filtering integration"],
                            _sklearn_classifier(
                                lambda: make_pipeline(
                                    StandardScaler(),
                                    MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=1000,
                                                  early_stopping=True, random_state=42)),
                                [])),
            ],
        ),
        DemoModel(
            name="member_segmentation",
            task_type="clustering",
            description="Groups members into behavioural segments from RFM features.",
            features=["recency_days", "frequency", "monetary", "engagement"],
            target="",
            dataset=segmentation_dataset,
            tags=["members", "rfm"],
            versions=[
                DemoVersion("1.0.0", "production", "KMeans",
                            "Four segments: champions, loyal, at risk, new.",
                            ["K-means on scaled RFM"], _kmeans(4)),
                DemoVersion("1.1.0", "experiment", "KMeans",
                            "Five segments: adds 'hibernating'.", ["k 4 -> 5"], _kmeans(5)),
            ],
        ),
        DemoModel(
            name="demand_forecasting",
            task_type="forecasting",
            description="Forecasts next week's loans from the last twelve weeks (LSTM).",
            features=[f"lag_{i}" for i in range(12, 0, -1)],
            target="loans_next_week",
            dataset=demand_dataset,
            framework="torch",
            tags=["inventory"],
            versions=[
                DemoVersion("1.0.0", "production", "LSTM", "Single-layer LSTM, 16 units.",
                            ["LSTM forecaster"], _lstm(16, 40)),
                DemoVersion("1.1.0", "experiment", "LSTM", "32 units, trained longer.",
                            ["hidden 16 -> 32", "epochs 40 -> 60"], _lstm(32, 60)),
            ],
        ),
    ]


def reference_csv(features: list[str], rows, target: str = "", labels=None) -> bytes:
    """The held-out rows as CSV; with their labels in the target column, validation measures
    the version on them (governance's evaluation)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    rows = np.asarray(rows, dtype=float)
    if labels is None or not target:
        writer.writerow(features)
        writer.writerows([f"{value:.6g}" for value in row] for row in rows)
    else:
        writer.writerow([*features, target])
        writer.writerows([*(f"{value:.6g}" for value in row), f"{label:.6g}"]
                         for row, label in zip(rows, np.asarray(labels, dtype=float),
                                               strict=True))
    return out.getvalue().encode()


def register_versions(demo: DemoModel, *, actor, log=print) -> list:
    """Create the model and register the versions of it not registered yet (in the experiments
    stage; an interrupted seeding left the others). Returns the new (spec, version) pairs."""
    import sklearn

    from registry import services, store
    from registry.models import ModelVersion, RegisteredModel

    if not RegisteredModel.objects.filter(name=demo.name).exists():
        services.model_create(name=demo.name, task_type=demo.task_type,
                              description=demo.description, tags=demo.tags, owner=actor,
                              actor=actor)
    have = set(ModelVersion.objects.filter(model__name=demo.name)
               .values_list("version", flat=True))
    missing = [spec for spec in demo.versions if spec.version not in have]
    if not missing:
        return []
    data = demo.dataset(np.random.default_rng(RNG_SEED))
    registered = []
    for spec in missing:
        model_bytes, metrics, params, preprocessors, (X_test, y_test) = spec.train(data)
        if demo.framework == "torch":
            import torch

            filename, framework_version = f"{demo.name}_v{spec.version}.pt", torch.__version__
        else:
            filename = f"{demo.name}_v{spec.version}.joblib"
            framework_version = sklearn.__version__
        files = [store.ingest_stream(io.BytesIO(model_bytes), name=filename, role="model")]
        files += [store.ingest_stream(io.BytesIO(payload), name=name, role="preprocessor")
                  for name, payload in preprocessors]
        # The held-out rows are the reference sample monitoring compares live traffic with.
        reference = reference_csv(demo.features, X_test, demo.target, y_test)
        files.append(store.ingest_stream(io.BytesIO(reference), name="reference.csv",
                                         role="reference"))
        metadata = {
            "author": AUTHOR,
            "description": spec.description,
            "algorithm": spec.algorithm,
            "training_dataset": f"synthetic://library-analytics/{demo.name}?seed={RNG_SEED}",
            "features": demo.features,
            "target": demo.target,
            "signature": [{"name": f, "dtype": "float64"} for f in demo.features],
            "hyperparameters": params,
            "metrics": metrics,
            "tags": [*demo.tags, *spec.tags],
            "changelog": spec.changelog,
            "python_version": platform.python_version(),
            "framework_version": framework_version,
            "input_example": np.asarray(X_test[:3], dtype=float).round(4).tolist(),
        }
        try:
            version = services.version_register(
                model_name=demo.name, version=spec.version, framework=demo.framework,
                metadata=metadata, files=files, actor=actor,
            )
        finally:
            for incoming in files:
                incoming.discard()
        headline = ", ".join(f"{k}={v}" for k, v in list(metrics.items())[:2])
        log(f"  {demo.name} {spec.version} ({spec.algorithm}) registered  [{headline}]")
        registered.append((spec, version))
    return registered
