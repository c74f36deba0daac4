"""What serving.md's commands name: versions 1-3 of ``churn`` (age, income, visits), with the aliases
champion (1) and challenger (2)."""

from common import customers
from sklearn.linear_model import LogisticRegression

import loopline

X = customers(200).drop(columns="plan")
for version in (1, 2, 3):
    with loopline.start_run(experiment="churn"):
        loopline.log_model(
            LogisticRegression(C=version).fit(X, X.income > 45 + version),
            "model",
            input_example=X[:5],
            registered_model_name="churn",
        )
loopline.RegistryClient().set_alias("churn", "champion", 1)
loopline.RegistryClient().set_alias("churn", "challenger", 2)
