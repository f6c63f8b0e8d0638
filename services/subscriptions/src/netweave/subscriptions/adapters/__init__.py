"""The subscriptions service's I/O: its database."""
