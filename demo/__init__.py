"""A small demo crawl the project writes itself: `tokenmill demo` builds it and runs the pipeline on it."""
