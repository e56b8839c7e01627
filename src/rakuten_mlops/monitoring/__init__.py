"""rakuten_mlops.monitoring."""
