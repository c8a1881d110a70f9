"""The station's headless agent: sources, sampler, outbox, link. Runs with or without Qt."""
