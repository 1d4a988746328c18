"""The engine's actors (store, scheduler, workers, node, relay) as thin trio adapters around
their cores, the messages they exchange, and open_engine() with the Engine handle."""
