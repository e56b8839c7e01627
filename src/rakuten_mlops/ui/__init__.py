"""rakuten_mlops.ui."""
