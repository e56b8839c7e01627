"""rakuten_mlops.models."""
