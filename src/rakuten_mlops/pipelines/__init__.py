"""rakuten_mlops.pipelines."""
