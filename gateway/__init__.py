"""The gateway: MQTT ingest, store, live state and the command room's API; also provisioning."""
