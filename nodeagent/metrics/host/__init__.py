"""The host-filesystem layer of the collectors, in the role prometheus/procfs plays for node_exporter.

Collectors read the host only through this package, and parse numbers only through :mod:`.gonum`:

- :mod:`.files`: :class:`~.files.Paths` (the --path.procfs/sysfs/rootfs roots; the one way to build a
  host path) and the readers: :func:`~.files.read_text`, :func:`~.files.read_optional`,
  :func:`~.files.read_uint` / :func:`~.files.read_int`, :func:`~.files.read_attribute` (one sysfs
  attribute), :func:`~.files.read_attributes` (several, through one directory descriptor),
  :func:`~.files.list_dir`; every read is bounded and decodes as Go's ``strings.ToValidUTF8``.
- :mod:`.sysfs`: listings below /sys: :func:`~.sysfs.class_devices`, :func:`~.sysfs.net_devices`,
  :func:`~.sysfs.numbered_entries` (Go's ``Glob(dir/prefix[0-9]*)``).
- :mod:`.gonum`: Go's ``strconv.ParseInt/ParseUint/ParseFloat`` rules.

Parsers stay pure (text in, values and a list of :class:`~nodeagent.metrics.host.skips.Skip` out);
only a collector reports what was skipped, with ``Collector.report``.
"""
