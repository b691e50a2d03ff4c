"""Tools around the product: data generator, benchmark, the polars alternative, the demo."""
