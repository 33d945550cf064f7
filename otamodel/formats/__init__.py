"""otamodel.formats."""
