"""smtp_in adapter."""
