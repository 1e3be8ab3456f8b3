"""relay adapter."""
