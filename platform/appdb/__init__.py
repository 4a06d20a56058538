"""app-db: datasets (one typed table per dataset version), predictions and monitoring reports."""
