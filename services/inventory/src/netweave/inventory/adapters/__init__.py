"""The inventory's I/O: its database, the built-in store, NetBox."""
