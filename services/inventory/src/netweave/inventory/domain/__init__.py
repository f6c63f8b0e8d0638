"""What each product needs from the inventory, decided without I/O."""
