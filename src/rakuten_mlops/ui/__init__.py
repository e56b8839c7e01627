"""The Streamlit app (`rakuten-mlops ui`): pages on the prediction API, the registry and monitoring files."""
