"""Telemetry: this package alone reads and writes the telemetry tables.

``telemetry``, ``telemetry_streams``, ``telemetry_quarantine`` and ``telemetry_gaps`` are
stored by ``store`` (on the statements of ``postgres`` or ``sqlite``, to the layouts and
protocol in ``writer``) and read back by ``store`` (watermarks, gaps), ``history`` (channels,
downsampled buckets) and ``export`` (raw rows as CSV). Everyone else asks these modules.
"""
