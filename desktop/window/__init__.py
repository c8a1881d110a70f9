"""The station window: watches and drives the headless agent (PySide6, pyqtgraph, qasync)."""
