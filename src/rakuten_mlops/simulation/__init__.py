"""The stream-replay simulation: synthetic listings, a data folder cut into ordered batches with
injected drift, their ingestion into a training pool, and load generation against the API.

Its parts sit in different import layers (see docs/architecture.md): `core` is pure and sits just
above `data`, `replay` and `loadgen` do I/O just below `pipelines`, and `cli` is a face.
"""
