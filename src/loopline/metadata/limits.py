"""MLflow's size limits for keys and values: the column sizes in ``schema.py`` and the checks in
``tracking.validation`` both come from here (this module needs no SQLAlchemy)."""

KEY = 250  # param, metric and tag keys
PARAM_VALUE = 6000
TAG_VALUE = 8000
