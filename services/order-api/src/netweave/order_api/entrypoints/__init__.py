"""How the order API is reached: HTTP (TMF641) and the bus."""
