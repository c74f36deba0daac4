"""XGBoost, LightGBM, ONNX and PyTorch flavors, both ways with the real ``mlflow`` package.

For each flavor: Loopline saves → Loopline loads → same predictions; ``mlflow.pyfunc.load_model``
loads Loopline's folder → same predictions; ``mlflow.<flavor>.save_model`` → Loopline loads →
same predictions; and log_model → registry → ``load_model("models:/name/1")``. Tiny models only.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support import allow_mlflow_pickles

import loopline
from loopline.errors import InvalidInput
from loopline.registry import load_model, log_model, save_model
from loopline.registry.flavors.base import ALLOW_PICKLE_ENV
from loopline.registry.models import load_from_directory

pytestmark = pytest.mark.filterwarnings(
    # MLflow's own signature inference, on models it saves or loads: not what these tests check.
    "ignore:.*Inferred schema contains integer column:UserWarning",
    "ignore:.*Any type hint is inferred:UserWarning",
)


@pytest.fixture(autouse=True)
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_MODEL_CODE_EXECUTION", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    loopline.set_tracking_uri(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "art"))
    yield
    while loopline.active_run():
        loopline.end_run()


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.uniform(0, 1, 60), "b": rng.normal(0, 1, 60), "c": rng.uniform(-1, 1, 60)})
    y = ((X.a + X.b / 3) > 0.5).astype(int)
    return X, y


@dataclass
class Case:
    """One kind of model: how to make it, feed it and save it with MLflow."""

    model: Any
    inputs: Any  # what predict gets
    expected: Callable[[Any], Any]  # the native model's own prediction on ``inputs``
    mlflow_save: Callable[[Any, str], None]
    pickled: bool = False  # Loopline's own files need allow_pickle
    mlflow_pickled: bool = False  # MLflow's default files need allow_pickle


def _xgb_classifier() -> Case:
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    import mlflow.xgboost

    X, y = _data()
    m = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(X, y)
    return Case(m, X, m.predict, lambda m, p: mlflow.xgboost.save_model(m, p, pip_requirements=[]))


def _xgb_booster() -> Case:
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed")
    import mlflow.xgboost

    X, y = _data()
    m = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, y), 4)
    return Case(
        m,
        X,
        lambda d: m.predict(xgb.DMatrix(d)),
        lambda m, p: mlflow.xgboost.save_model(m, p, pip_requirements=[]),
    )


def _lgb_classifier() -> Case:
    lgb = pytest.importorskip("lightgbm", reason="the lightgbm extra is not installed")
    import mlflow.lightgbm

    X, y = _data()
    m = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, min_child_samples=5, verbose=-1).fit(X, y)
    return Case(m, X, m.predict, lambda m, p: mlflow.lightgbm.save_model(m, p, pip_requirements=[]))


def _lgb_booster() -> Case:
    lgb = pytest.importorskip("lightgbm", reason="the lightgbm extra is not installed")
    import mlflow.lightgbm

    X, y = _data()
    params = {"objective": "binary", "num_leaves": 4, "min_data_in_leaf": 5, "verbose": -1}
    m = lgb.train(params, lgb.Dataset(X, y), 4)
    return Case(m, X, m.predict, lambda m, p: mlflow.lightgbm.save_model(m, p, pip_requirements=[]))


def _onnx() -> Case:
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx (dev) makes the test model")
    import mlflow.onnx
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    arr = X.to_numpy(np.float32).copy()  # writable, as torch.from_numpy wants
    proto = skl2onnx.to_onnx(LogisticRegression().fit(arr, y), arr[:1], options={"zipmap": False})
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])

    def expected(d: Any) -> Any:
        label, proba = session.run(None, {"X": np.asarray(d, np.float32)})
        return {"label": label, "probabilities": proba}

    return Case(proto, arr, expected, lambda m, p: mlflow.onnx.save_model(m, p, pip_requirements=[]))


class TinyNet:
    """Built lazily so the module imports without torch."""

    @staticmethod
    def make() -> Any:
        import torch

        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).eval()


def _pytorch() -> Case:
    torch = pytest.importorskip("torch", reason="the pytorch extra is not installed")
    import mlflow.pytorch

    X, _ = _data()
    arr = X.to_numpy(np.float32).copy()  # writable, as torch.from_numpy wants
    m = TinyNet.make()

    def expected(d: Any) -> Any:
        with torch.no_grad():
            return m(torch.from_numpy(np.asarray(d, np.float32))).numpy()

    def mlflow_save(model: Any, path: str) -> None:  # MLflow 3's default: torch.export, no pickle
        mlflow.pytorch.save_model(model, path, input_example=arr[:4], pip_requirements=[])

    return Case(m, arr, expected, mlflow_save, pickled=True)


CASES: dict[str, Callable[[], Case]] = {
    "xgboost-sklearn": _xgb_classifier,
    "xgboost-booster": _xgb_booster,
    "lightgbm-sklearn": _lgb_classifier,
    "lightgbm-booster": _lgb_booster,
    "onnx": _onnx,
    "pytorch": _pytorch,
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]()


def _same(a: Any, b: Any) -> None:
    if isinstance(a, dict) or isinstance(b, dict):
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-6, atol=1e-6)
        return
    a = a.to_numpy() if hasattr(a, "to_numpy") else np.asarray(a)
    b = b.to_numpy() if hasattr(b, "to_numpy") else np.asarray(b)
    np.testing.assert_allclose(a.reshape(len(a), -1), b.reshape(len(b), -1), rtol=1e-6, atol=1e-6)


def test_save_load_predict_and_mlflow_loads_it(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    path = tmp_path / "model"
    save_model(case.model, path, input_example=case.inputs[:5])
    expected = case.expected(case.inputs)
    loaded = load_from_directory(path, allow_pickle=case.pickled)
    _same(loaded.predict(case.inputs), expected)

    allow_mlflow_pickles(monkeypatch)
    theirs = mlflow.pyfunc.load_model(str(path))
    _same(theirs.predict(case.inputs), expected)


def test_mlflow_saved_model_loads_in_loopline(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "mlflow-model"
    case.mlflow_save(case.model, str(path))
    loaded = load_from_directory(path, allow_pickle=case.mlflow_pickled)
    _same(loaded.predict(case.inputs), case.expected(case.inputs))


def test_log_register_load_through_the_registry(case: Case) -> None:
    with loopline.start_run(experiment="flavors"):
        info = log_model(case.model, "model", input_example=case.inputs[:5], registered_model_name="m")
    assert info.registered_model_version == 1
    loaded = load_model("models:/m/1", allow_pickle=case.pickled)
    assert loaded.verified
    _same(loaded.predict(case.inputs), case.expected(case.inputs))


# ---- what each flavor writes, and what it refuses ---------------------------------------------


def test_files_and_flavor_blocks_match_mlflow_layout(tmp_path: Path) -> None:
    expected = {
        "xgboost-sklearn": (
            "xgboost",
            "mlflow.xgboost",
            "model.ubj",
            {"model_class": "xgboost.sklearn.XGBClassifier"},
        ),
        "xgboost-booster": (
            "xgboost",
            "mlflow.xgboost",
            "model.ubj",
            {"model_class": "xgboost.core.Booster"},
        ),
        "lightgbm-sklearn": ("lightgbm", "mlflow.lightgbm", "model.skops", {"serialization_format": "skops"}),
        "lightgbm-booster": (
            "lightgbm",
            "mlflow.lightgbm",
            "model.lgb",
            {"model_class": "lightgbm.basic.Booster"},
        ),
        "onnx": ("onnx", "mlflow.onnx", "model.onnx", {"onnx_session_options": None}),
        "pytorch": ("pytorch", "mlflow.pytorch", "data", {"model_data": "data"}),
    }
    checked = 0
    for name, make in CASES.items():
        try:
            c = make()
        except pytest.skip.Exception:
            continue
        flavor, loader, data, extra = expected[name]
        meta = save_model(c.model, tmp_path / name)
        assert set(meta.flavors) == {"python_function", flavor}
        pyfunc = meta.flavors["python_function"]
        assert pyfunc["loader_module"] == loader and pyfunc["data"] == data
        assert (tmp_path / name / data).exists()
        block = meta.flavors[flavor]
        assert block.get("data", block.get("model_data")) == data
        assert {k: block[k] for k in extra} == extra
        checked += 1
    if not checked:
        pytest.skip("none of xgboost, lightgbm, onnx, torch is installed")


def test_pytorch_pickle_needs_opt_in_and_mlflow_pt2_does_not(tmp_path: Path) -> None:
    c = _pytorch()
    import mlflow.pytorch

    save_model(c.model, tmp_path / "ours")
    assert (tmp_path / "ours" / "data" / "model.pth").is_file()
    assert (
        tmp_path / "ours" / "data" / "pickle_module_info.txt"
    ).read_text() == "mlflow.pytorch.pickle_module"
    with pytest.raises(InvalidInput, match=r"unpickling data/model.pth .*runs code") as err:
        load_from_directory(tmp_path / "ours")
    assert "allow_pickle=True" in (err.value.hint or "")

    mlflow.pytorch.save_model(
        c.model, str(tmp_path / "pickled"), serialization_format="pickle", pip_requirements=[]
    )
    with pytest.raises(InvalidInput, match="runs code"):
        load_from_directory(tmp_path / "pickled")
    _same(
        load_from_directory(tmp_path / "pickled", allow_pickle=True).predict(c.inputs), c.expected(c.inputs)
    )

    c.mlflow_save(c.model, str(tmp_path / "pt2"))  # torch.export archive: tensors and JSON only
    assert (tmp_path / "pt2" / "data" / "model.pt2").is_file()
    _same(load_from_directory(tmp_path / "pt2").predict(c.inputs), c.expected(c.inputs))


def test_pt2_archive_with_a_pickled_record_needs_opt_in(tmp_path: Path) -> None:
    c = _pytorch()
    c.mlflow_save(c.model, str(tmp_path / "pt2"))
    archive = tmp_path / "pt2" / "data" / "model.pt2"
    with zipfile.ZipFile(archive, "a") as z:  # a record the restricted unpickler refuses
        prefix = z.namelist()[0].split("/")[0]
        z.writestr(f"{prefix}/data/constants/evil", b"\x80\x04cos\nsystem\n.")
    with pytest.raises(InvalidInput, match=r"model.pt2 .*runs code"):
        load_from_directory(tmp_path / "pt2")


def test_lightgbm_pickled_by_mlflow_needs_opt_in(tmp_path: Path) -> None:
    c = _lgb_classifier()
    import mlflow.lightgbm

    mlflow.lightgbm.save_model(
        c.model, str(tmp_path / "m"), serialization_format="pickle", pip_requirements=[]
    )
    with pytest.raises(InvalidInput, match=r"unpickling model.pkl .*runs code"):
        load_from_directory(tmp_path / "m")
    _same(load_from_directory(tmp_path / "m", allow_pickle=True).predict(c.inputs), c.expected(c.inputs))


def test_lightgbm_skops_trusts_listed_types_only_when_verified(tmp_path: Path) -> None:
    import fractions

    c = _lgb_classifier()
    c.model.note_ = fractions.Fraction(1, 3)  # a type skops does not trust by default
    meta = save_model(c.model, tmp_path / "m")
    assert "fractions.Fraction" in meta.flavors["lightgbm"]["skops_trusted_types"]
    with pytest.raises(InvalidInput, match="not on the trusted list"):
        load_from_directory(tmp_path / "m")  # an unverified folder: its own trust list is not enough
    assert load_from_directory(tmp_path / "m", allow_pickle=True).native.note_ == fractions.Fraction(1, 3)
    with loopline.start_run(experiment="skops"):
        log_model(c.model, registered_model_name="lgb")
    loaded = load_model("models:/lgb/1")  # verified against the registry's digests: the list is used
    _same(loaded.predict(c.inputs), c.expected(c.inputs))


def test_xgboost_refuses_a_class_outside_xgboost(tmp_path: Path) -> None:
    c = _xgb_booster()
    meta = save_model(c.model, tmp_path / "m")
    meta.flavors["xgboost"]["model_class"] = "subprocess.Popen"
    meta.save(tmp_path / "m")
    with pytest.raises(InvalidInput, match="not an XGBoost model class"):
        load_from_directory(tmp_path / "m")


def test_onnx_feeds_several_inputs_by_name(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 1])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "add", [a, b], [out])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    save_model(proto, tmp_path / "add")
    model = load_from_directory(tmp_path / "add")
    df = pd.DataFrame({"b": [1.0, 2.0], "a": [10.0, 20.0], "ignored": ["x", "y"]})
    np.testing.assert_allclose(model.predict(df).ravel(), [11.0, 22.0])
    feeds = {"a": np.array([[1.0]], np.float32), "b": np.array([[2.0]], np.float32)}
    np.testing.assert_allclose(model.predict(feeds), [[3.0]])
    with pytest.raises(InvalidInput, match="no column in the data"):
        model.predict(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InvalidInput, match="a plain array can feed only one"):
        model.predict(np.zeros((2, 1), np.float32))
