"""The project's DAG files, shipped inside the package so every Airflow process runs the same version.

`rakuten-mlops airflow init` links them into ``$AIRFLOW_HOME/dags``; images copy this folder.
"""
