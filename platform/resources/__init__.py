"""One ConfigurableResource per external system."""
