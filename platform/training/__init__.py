"""Training as pure functions: the split, the candidate pipelines, scoring and the promotion rule."""
