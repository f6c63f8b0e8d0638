"""How the inventory is reached: the bus and a small HTTP API."""
