"""Load generation against a prediction server: the traffic generator (`rakuten-mlops traffic`, the
traffic DAG, the serving benchmark) and the cheap keep-alive connection it sends through."""
