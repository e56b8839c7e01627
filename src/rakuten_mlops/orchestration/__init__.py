"""Airflow orchestration: local AIRFLOW_HOME set-up and the glue between DAG tasks and pipeline steps.

Nothing here imports Airflow at import time except :mod:`rakuten_mlops.orchestration.taskflow`,
which only the DAG files in ``rakuten_mlops/orchestration/dags`` import (shipped in the package).
"""
