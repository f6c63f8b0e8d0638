"""What the network should look like for each subscription, decided without I/O."""
