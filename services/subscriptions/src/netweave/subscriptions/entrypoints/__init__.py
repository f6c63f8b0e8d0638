"""How the subscriptions service is reached: the bus and its read API."""
