"""Settings, the NATS bus and its streams, the embedded nats-server, and the stores."""
