"""Programs and helpers the tests run as separate processes."""
