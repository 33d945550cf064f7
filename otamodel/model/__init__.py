"""otamodel.model."""
