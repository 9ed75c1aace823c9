"""fastText model wrappers: load once, normalize text one way, predict in batches."""
