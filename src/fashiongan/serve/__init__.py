"""`fashiongan serve`: an HTTP API and a web page over trained generators (the `serve` extra)."""
