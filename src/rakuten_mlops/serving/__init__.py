"""rakuten_mlops.serving."""
