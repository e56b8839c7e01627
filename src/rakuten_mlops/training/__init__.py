"""rakuten_mlops.training."""
