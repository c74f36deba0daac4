"""Verified skops files load without ``import skops.io``, trusting no more than skops would."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.registry.flavors import skops_lean


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    return X, (X.a - X.b > 0).astype(int)


class Custom:
    """A type no default list trusts."""

    def __init__(self) -> None:
        self.weights = np.arange(3.0)


def test_the_estimator_rule_agrees_with_skops_default_list() -> None:
    """For every scikit-learn class loaded in this process (skops' census imported them all), the
    per-type rule says yes exactly when skops' default list names the class."""
    from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES

    listed = set(SKLEARN_ESTIMATOR_TYPE_NAMES)
    seen: set[str] = set()
    for module in [m for name, m in list(sys.modules.items()) if name.startswith("sklearn.") and m]:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            name = skops_lean._type_name(cls)
            if name.startswith("sklearn.") and name not in seen:
                seen.add(name)
                assert skops_lean.is_listed_estimator(name) == (name in listed), name
    assert len(seen & listed) == len(listed) > 100  # every listed estimator was checked
    for outsider in ("os.system", "sklearn.base.BaseEstimator", "sklearn.tree._tree.Tree", "sklearn.nope.X"):
        assert not skops_lean.is_listed_estimator(outsider)


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(StandardScaler(), LogisticRegression()),
        make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(C=0.5)),
    ],
    ids=["scaler+logistic", "onehot+logistic"],
)
def test_verified_files_load_like_skops_loads_them(model: object, tmp_path: Path) -> None:
    X, y = _data()
    fitted = model.fit(X, y)  # type: ignore[attr-defined]
    sio.dump(fitted, tmp_path / "m.skops")
    done, lean = skops_lean.load_verified(tmp_path / "m.skops", None)
    assert done
    np.testing.assert_array_equal(lean.predict(X), sio.load(tmp_path / "m.skops").predict(X))
    assert type(lean) is type(fitted) and lean.get_params().keys() == fitted.get_params().keys()


def test_types_outside_the_rules_are_left_to_skops(tmp_path: Path) -> None:
    X, y = _data()
    sio.dump({"custom": Custom()}, tmp_path / "custom.skops")
    name = f"{Custom.__module__}.Custom"
    assert skops_lean.load_verified(tmp_path / "custom.skops", None) == (False, None)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):  # and skops refuses it too
        sio.load(tmp_path / "custom.skops")
    done, obj = skops_lean.load_verified(tmp_path / "custom.skops", [name])  # listed in a verified MLmodel
    assert done and isinstance(obj["custom"], Custom)
    np.testing.assert_array_equal(obj["custom"].weights, [0.0, 1.0, 2.0])

    sio.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), tmp_path / "rf.skops")
    assert skops_lean.load_verified(tmp_path / "rf.skops", None) == (False, None)  # trees: skops' call
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    assert skops_lean.load_verified(tmp_path / "junk.skops", None) == (False, None)


_CHILD = """
import json, sys
import numpy as np, pandas as pd
import loopline
X = pd.DataFrame(json.loads(sys.argv[1]))
model = loopline.load_model("models:/lean/1")
out = {"pred": model.predict(X).tolist(), "verified": model.verified,
       "skops_io": "skops.io" in sys.modules}
import skops.io as sio  # the real one, untouched by the private copy
from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
out["defaults"] = len(SKLEARN_ESTIMATOR_TYPE_NAMES)
print(json.dumps(out))
"""


def test_a_registry_load_imports_no_skops_io_and_leaves_it_intact(tmp_path: Path) -> None:
    import loopline
    from loopline.registry import log_model

    X, y = _data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    db, art = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art")
    loopline.set_tracking_uri(db, art)
    with loopline.start_run(experiment="lean"):
        log_model(model, "model", registered_model_name="lean")
    env = {"LOOPLINE_TRACKING_URI": db, "LOOPLINE_ARTIFACTS_URI": art, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, X.to_json(orient="columns")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["verified"] and not out["skops_io"] and out["defaults"] > 100
    assert out["pred"] == model.predict(X).tolist()
