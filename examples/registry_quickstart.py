"""The model registry in one script: log and register a model, alias it, load it by alias, predict, evaluate.

python examples/registry_quickstart.py      # writes to ./.loopline (SQLite + artifacts)
loopline models show breast-cancer          # its versions, aliases and recorded digests

Each run registers a new version of ``breast-cancer`` and moves the ``champion`` alias to it.
"""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import loopline
from loopline.errors import InvalidInput
from loopline.registry import RegistryClient, evaluate

NAME = "breast-cancer"


def main() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)  # bundled with scikit-learn: no download
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)

    # Log the model to a run and register it: MLmodel, model.skops, signature, requirements, digests.
    with loopline.start_run(experiment="registry-quickstart", run_name="logreg") as run:
        loopline.log_params({"model": "logreg", "max_iter": 1000})
        info = loopline.log_model(model, "model", input_example=X_train[:5], registered_model_name=NAME)
    version = info.registered_model_version
    assert version is not None
    print(f"logged model {info.model_id} from run {run.run_id}: {len(info.digests)} files")

    # Point the champion alias at the new version (moving it if an older one had it).
    RegistryClient().set_alias(NAME, "champion", version)
    print(f"registered {NAME} version {version} as @champion")

    # Load by alias: files checked against the digests recorded at registration, then loaded.
    champion = loopline.load_model(f"models:/{NAME}@champion")
    assert champion.version is not None
    print(f"loaded version {champion.version.version} (verified: {champion.verified})")
    print("first predictions:", champion.predict(X_test[:5]).tolist(), "true:", y_test[:5].tolist())

    # The input is checked against the signature inferred from input_example.
    try:
        champion.predict(X_test.drop(columns=["mean radius"]))
    except InvalidInput as e:
        print("refused:", e.message)

    # Evaluate on held-out data; the metrics are logged to the run that trained the model.
    result = evaluate(
        f"models:/{NAME}@champion", X_test.assign(target=y_test), targets="target", run_id=run.run_id
    )
    print(
        f"accuracy {result.metrics['accuracy_score']:.3f}, ROC AUC {result.metrics['roc_auc']:.3f}, "
        f"F1 {result.metrics['f1_score']:.3f} on {result.example_count} rows (logged to run {result.run_id})"
    )


if __name__ == "__main__":
    main()
