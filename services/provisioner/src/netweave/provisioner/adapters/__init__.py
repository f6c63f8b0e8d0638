"""The provisioner's I/O: its database, the simulated network, LSO."""
