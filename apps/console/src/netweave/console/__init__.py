"""The netweave web console: pages over the services' HTTP APIs, through a small backend."""
