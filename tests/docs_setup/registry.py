"""The data registry.md's `models evaluate` reads: test.csv, the breast-cancer features and a
``churned`` label (the doc's model is trained on scikit-learn's breast-cancer set)."""

from sklearn.datasets import load_breast_cancer

X, y = load_breast_cancer(return_X_y=True, as_frame=True)
X.assign(churned=y).sample(100, random_state=0).to_csv("test.csv", index=False)
