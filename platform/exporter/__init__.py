"""The platform exporter: model quality, drift, predictions, freshness and aliases as Prometheus metrics."""
