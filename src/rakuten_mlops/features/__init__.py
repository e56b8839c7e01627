"""Feature extraction: text cleaning and image embeddings."""
