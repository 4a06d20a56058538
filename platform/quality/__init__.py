"""Model quality on held-out data, and feature drift."""
