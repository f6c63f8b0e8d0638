"""Pure order logic: TMF641 states, dependencies between items, validation. No I/O."""
