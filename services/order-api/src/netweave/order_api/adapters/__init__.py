"""The order API's I/O: its database, the subscriptions read API."""
