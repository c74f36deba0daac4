"""The runs tracking.md's `runs list -e breast-cancer` finds (as `make demo` leaves them): a few runs
with a ``model`` param and a ``val_accuracy`` metric."""

import loopline

for name, accuracy in (("sgd-logreg", 0.95), ("sgd-logreg", 0.97), ("random-forest", 0.96)):
    with loopline.start_run(experiment="breast-cancer"):
        loopline.log_param("model", name)
        loopline.log_metric("val_accuracy", accuracy)
