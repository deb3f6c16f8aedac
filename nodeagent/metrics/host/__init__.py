"""The host-filesystem layer of the collectors, in the role prometheus/procfs plays for node_exporter.

Collectors read the host only through this package, and parse numbers only through :mod:`.gonum`:

- :mod:`.files`: :class:`~.files.Paths` (the --path.procfs/sysfs/rootfs roots; the one way to build a
  host path) and the readers: :func:`~.files.read_text`, :func:`~.files.read_optional`,
  :func:`~.files.read_uint` / :func:`~.files.read_int`, :func:`~.files.read_attribute` (one sysfs
  attribute), :func:`~.files.read_attributes` (several, through one directory descriptor),
  :func:`~.files.read_lines` (tables streamed line by line), :func:`~.files.read_path_text` (texts
  holding paths), :func:`~.files.list_dir` / :func:`~.files.list_files`, :func:`~.files.valid_text`
  (os-decoded names as label values); every read is bounded and decodes as Go's ``strings.ToValidUTF8``.
- :mod:`.sysfs`: listings below /sys: :func:`~.sysfs.class_devices`, :func:`~.sysfs.net_devices`,
  :func:`~.sysfs.numbered_entries` (Go's ``Glob(dir/prefix[0-9]*)``).
- :mod:`.gonum`: Go's ``strconv.ParseInt/ParseUint/ParseFloat`` rules.

Parsers stay pure (text, lines or bytes in; values and a list of :class:`~nodeagent.metrics.host.skips.Skip`
out, never an exception); only a collector reports what was skipped, with ``Collector.report``/``skip``.
Samples are emitted one way, :mod:`nodeagent.metrics._emit` (``gauge``/``counter``/``untyped`` +
``add_sample`` with label dicts built once). A new collector: ``paths.proc(...)``/``paths.sys(...)`` ->
a reader here -> a pure ``parse_*`` -> ``self.report(skipped)`` -> families from ``_emit``; its test module
``tests/metrics/test_<name>.py`` uses the ``host_tree`` and ``scrape`` fixtures, and its parser joins
``tests/metrics/test_parsers_fuzz.py``.
"""
