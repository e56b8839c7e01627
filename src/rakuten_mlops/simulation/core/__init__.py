"""Pure parts of the simulation: vocabulary, synthetic listings, stream cutting and injected drift."""
