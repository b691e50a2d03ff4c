"""Report: the versioned report pipelines, their runner and the report lifecycle."""
