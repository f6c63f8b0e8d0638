"""How the provisioner is reached: the bus, its HTTP API and LSO's callbacks."""
