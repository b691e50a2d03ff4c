"""Test helpers shared across the test folders (plain modules, imported as ``support.<name>``):
reference models, data builders, the replica set and the browser driver."""
