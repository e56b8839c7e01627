"""The code MLflow logs with every model version ("models from code").

MLflow copies this file into the logged model and runs it at load time; it names the
`PythonModel` to use, so the model class is imported from the installed package instead of
being cloudpickled into the artifact. Only `register` refers to it, by path: importing it
elsewhere would register a model object as a side effect.
"""

from mlflow.models import set_model

from rakuten_mlops.models.pyfunc import ProductClassifierModel

set_model(ProductClassifierModel())
