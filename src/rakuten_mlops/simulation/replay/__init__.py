"""Steps with I/O of the stream replay: the streams folder (store) and make/next/status (steps)."""
