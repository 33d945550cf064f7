"""otamodel.check."""
