"""admin adapter."""
