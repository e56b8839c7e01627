"""rakuten_mlops.data."""
