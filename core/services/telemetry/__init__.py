"""Telemetry: this package alone reads and writes the telemetry tables.

``telemetry_samples``, ``telemetry_rollups``, ``telemetry_streams``, ``telemetry_quarantine``
and ``telemetry_gaps`` are stored by ``store`` (on the statements of ``postgres`` or
``sqlite``, to the layouts and protocol in ``writer``) and read back by ``store``
(watermarks, gaps), ``history`` (channels from the rollups, buckets from samples or
rollups), ``export`` (one CSV line per channel value) and ``quarantine`` (quarantined samples,
for admins). Everyone else asks these modules.
"""
