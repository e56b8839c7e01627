"""rakuten_mlops.lifecycle."""
