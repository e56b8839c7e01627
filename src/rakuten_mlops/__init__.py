"""rakuten-mlops: train, track, serve and monitor a Rakuten France product-type classifier."""

__version__ = "0.1.0"
