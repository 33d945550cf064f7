"""otamodel.env."""
