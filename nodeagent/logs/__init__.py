"""Log shipping: files -> reader -> parser -> record -> pipeline -> sinks -> acks -> checkpoint."""
