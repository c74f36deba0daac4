"""The data monitoring.md names: train.parquet and today.csv (customers: age, income, visits, plan,
today's drifted), ``today_df``, versions 1-3 of ``customers``, and a deployment ``churn-prod`` of a
``churn`` model trained on customers/3."""

from common import customers
from sklearn.linear_model import LogisticRegression

import loopline
from loopline.serving import set_deployment

train = customers(2000)
train.to_parquet("train.parquet")
today_df = customers(2000, shift=8)
today_df.to_csv("today.csv", index=False)
today_df.to_parquet("today.parquet")
for _ in range(3):
    loopline.log_dataset(customers(1000), name="customers")

X = train.drop(columns="plan")
with loopline.start_run(experiment="churn"):
    loopline.log_dataset("datasets:/customers/3", context="training")
    info = loopline.log_model(
        LogisticRegression(max_iter=1000).fit(X, X.income > 50),
        "model",
        input_example=X[:5],
        registered_model_name="churn",
    )
loopline.RegistryClient().set_alias("churn", "champion", info.registered_model_version)
set_deployment("churn-prod", [("models:/churn@champion", 100)])
