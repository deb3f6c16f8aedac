"""Group C collectors: hardware (hwmon, thermal_zone, edac, powersupplyclass, watchdog, mdadm), kernel
(filefd, entropy, pressure, schedstat, time, timex, uname), os and textfile.

Edge cases on small trees built in tmp_path: missing sources, malformed values, option filters. The
fixture comparison with node_exporter's output is tests/metrics/test_fixture_e2e.py.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nodeagent.metrics import _promtext, hwmon, mdadm, timex
from nodeagent.metrics import os as os_collector
from nodeagent.metrics._sysfs_attrs import go_parse_float, go_parse_int, numbered_entries, to_valid_utf8
from nodeagent.metrics.exposition import format_value, render_text
from nodeagent.metrics.filefd import parse_file_nr
from nodeagent.metrics.pressure import parse_psi
from nodeagent.metrics.registry import Paths, all_collectors, build_collectors
from nodeagent.metrics.schedstat import parse_schedstat
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.textfile import read_textfiles
from tests.conftest import NODE_EXPORTER_FIXTURE, require_shared

FIXTURE_TEXTFILES = NODE_EXPORTER_FIXTURE / "textfile"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def scrape(root: Path, collector: str, **settings: object) -> tuple[list[str], bool]:
    """(metric lines without HELP/TYPE and scrape metrics, success) of one collector on ``root``."""
    paths = Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=root, udev_data=root / "udev")
    values = {f"collector.{collector}.{key.replace('_', '-')}": value for key, value in settings.items()}
    text = render_text(run_collectors(build_collectors([collector], paths, values)))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    success = f'node_scrape_collector_success{{collector="{collector}"}} 1' in lines
    return [line for line in lines if not line.startswith("node_scrape_collector_")], success


def test_every_group_c_collector_is_registered_enabled_by_default() -> None:
    registry = all_collectors()
    for name in (
        "filefd",
        "entropy",
        "pressure",
        "schedstat",
        "time",
        "timex",
        "uname",
        "os",
        "textfile",
        "mdadm",
        "hwmon",
        "thermal_zone",
        "edac",
        "powersupplyclass",
        "watchdog",
    ):
        assert registry[name].default_enabled, name


# --- Go-compatible parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("1", 1.0), ("-2.5", -2.5), ("1e3", 1000.0), ("+Inf", math.inf), ("0x10", 16.0)]
)
def test_go_parse_float_accepts_what_strconv_accepts(text: str, value: float) -> None:
    assert go_parse_float(text) == value


@pytest.mark.parametrize("text", ["", " 1", "1 ", "1_000", "abc", "1\n"])
def test_go_parse_float_rejects_what_strconv_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        go_parse_float(text)


def test_go_parse_int_base_zero_reads_go_literals() -> None:
    assert go_parse_int("010", 0) == 8  # octal, as Go's ParseInt(s, 0, 64)
    assert go_parse_int("0x1f", 0) == 31
    assert go_parse_int("-12", 0) == -12
    assert go_parse_int("1_000", 0) == 1000
    for bad in ("", "08", "1__0", "0x", "12a", "9223372036854775808"):
        with pytest.raises(ValueError):
            go_parse_int(bad, 0)
    with pytest.raises(ValueError):
        go_parse_int("1_000")  # base 10: no underscores


def test_to_valid_utf8_replaces_each_invalid_run_once() -> None:
    assert to_valid_utf8(b"ab\xff\xfecd") == "ab\ufffdcd"
    assert to_valid_utf8("Ünïcode".encode()) == "Ünïcode"


def test_numbered_entries_match_go_glob_order(tmp_path: Path) -> None:
    for name in ("cpu10", "cpu2", "cpu1", "cpux", "cpu"):
        (tmp_path / name).mkdir()
    assert [suffix for suffix, _ in numbered_entries(tmp_path, "cpu")] == ["1", "10", "2"]


# --- filefd, entropy, pressure, schedstat ---------------------------------------------------------


def test_filefd_parses_and_reports_bad_content(tmp_path: Path) -> None:
    assert parse_file_nr("1024\t0\t1631329\n") == (1024.0, 1631329.0)
    with pytest.raises(ValueError):
        parse_file_nr("1024 0")
    write_tree(tmp_path, {"proc/sys/fs/file-nr": "garbage\n"})
    lines, ok = scrape(tmp_path, "filefd")
    assert not ok and lines == []


def test_kernel_collectors_without_their_files_report_no_data(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    for name in (
        "filefd",
        "entropy",
        "pressure",
        "schedstat",
        "mdadm",
        "hwmon",
        "edac",
        "thermal_zone",
        "powersupplyclass",
        "watchdog",
        "os",
    ):
        lines, ok = scrape(tmp_path, name)
        assert (lines, ok) == ([], False), name


def test_pressure_exports_cpu_some_and_irq_full_only(tmp_path: Path) -> None:
    line = "avg10=0.00 avg60=0.00 avg300=0.00 total="
    write_tree(
        tmp_path,
        {
            "proc/pressure/cpu": f"some {line}14036781\nfull {line}5\n",
            "proc/pressure/io": f"some {line}2000000\nfull {line}1000000\n",
            "proc/pressure/memory": f"some {line}0\nfull {line}0\n",
            "proc/pressure/irq": f"full {line}8494\n",
        },
    )
    lines, ok = scrape(tmp_path, "pressure")
    assert ok
    assert lines == [
        "node_pressure_cpu_waiting_seconds_total 14.036781000000001",  # Go divides twice by 1000
        "node_pressure_io_stalled_seconds_total 1",
        "node_pressure_io_waiting_seconds_total 2",
        "node_pressure_irq_stalled_seconds_total 0.008494",
        "node_pressure_memory_stalled_seconds_total 0",
        "node_pressure_memory_waiting_seconds_total 0",
    ]


def test_pressure_without_irq_file_still_reports_the_others(tmp_path: Path) -> None:
    write_tree(tmp_path, {"proc/pressure/cpu": "some avg10=0 avg60=0 avg300=0 total=1000000\n"})
    lines, ok = scrape(tmp_path, "pressure")
    assert ok and lines == ["node_pressure_cpu_waiting_seconds_total 1"]


def test_pressure_line_without_total_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_psi("some avg10=0.00\n")


def test_schedstat_skips_malformed_lines_and_converts_nanoseconds() -> None:
    text = (
        "version 15\ntimestamp 1\ncpu0 1 2 3 4 5 6 2045936778163039 343796328169361 4767485306\n"
        "domain0 3 1 2\ncpu1 1 2 x\ncpux 1 2 3 4 5 6 7 8 9\n"
    )
    stats = parse_schedstat(text)
    assert [(s.cpu, s.running_ns, s.waiting_ns, s.timeslices) for s in stats] == [
        ("0", 2045936778163039, 343796328169361, 4767485306)
    ]


# --- time, timex, uname, os -------------------------------------------------------------------------


def test_time_reports_clocksources_in_glob_order(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet\n",
            "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
            "sys/devices/system/clocksource/clocksource1/current_clocksource": "x\n",  # unreadable: skipped
        },
    )
    before = time.time()
    lines, ok = scrape(tmp_path, "time")
    assert ok
    assert 'node_time_clocksource_available_info{clocksource="hpet",device="0"} 1' in lines
    assert 'node_time_clocksource_current_info{clocksource="tsc",device="0"} 1' in lines
    assert not any('device="1"' in line for line in lines)
    now = float(next(line for line in lines if line.startswith("node_time_seconds ")).split()[1])
    assert before - 1 <= now <= time.time() + 1
    offset = next(line for line in lines if line.startswith("node_time_zone_offset_seconds"))
    assert f'time_zone="{time.localtime().tm_zone}"' in offset


def test_timex_conversion_follows_node_exporter_units() -> None:
    fake = SimpleNamespace(
        offset=1500,
        freq=655360,
        maxerror=16000000,
        esterror=16000000,
        status=0x2000 | 1,
        constant=2,
        tick=10000,
        ppsfreq=65536,
        jitter=3000,
        shift=4,
        stabil=65536 * 2,
        jitcnt=1,
        calcnt=2,
        errcnt=3,
        stbcnt=4,
        tai=37,
    )
    values = {name: value for name, _, _, value in timex.timex_metrics(fake, 0)}
    assert values["node_timex_offset_seconds"] == 1500 / 1e9  # STA_NANO: nanoseconds
    assert values["node_timex_pps_jitter_seconds"] == 3000 / 1e9
    assert values["node_timex_frequency_adjustment_ratio"] == 1 + 10 / 1e6
    assert values["node_timex_maxerror_seconds"] == 16.0
    assert values["node_timex_tick_seconds"] == 0.01
    assert values["node_timex_pps_frequency_hertz"] == 1 / 1e6
    assert values["node_timex_pps_stability_hertz"] == 2 / 1e6
    assert values["node_timex_status"] == float(0x2001)
    assert values["node_timex_tai_offset_seconds"] == 37
    assert values["node_timex_sync_status"] == 1
    assert {name: value for name, _, _, value in timex.timex_metrics(fake, timex.TIME_ERROR)}[
        "node_timex_sync_status"
    ] == 0
    micro = SimpleNamespace(**{**vars(fake), "status": 0})
    assert {name: value for name, _, _, value in timex.timex_metrics(micro, 0)}[
        "node_timex_offset_seconds"
    ] == 1500 / 1e6


def test_timex_reads_this_hosts_clock(tmp_path: Path) -> None:
    lines, ok = scrape(tmp_path, "timex")
    assert ok, "adjtimex(2) with modes=0 needs no privilege"
    assert any(line.startswith("node_timex_tick_seconds ") for line in lines)
    assert sum(line.startswith("node_timex_") for line in lines) == 17


def test_uname_labels(tmp_path: Path) -> None:
    write_tree(tmp_path, {"proc/sys/kernel/domainname": "example.org\n"})
    lines, ok = scrape(tmp_path, "uname")
    info = os.uname()
    assert ok and lines == [
        f'node_uname_info{{domainname="example.org",machine="{info.machine}",nodename="{info.nodename}",'
        f'release="{info.release}",sysname="{info.sysname}",version="{info.version}"}} 1'
    ]
    (tmp_path / "proc/sys/kernel/domainname").unlink()
    assert 'domainname="(none)"' in scrape(tmp_path, "uname")[0][0]


def test_os_release_parsing() -> None:
    text = (
        '# comment\nNAME="Foo \\"Linux\\""\nID=foo\nID_LIKE=\'bar baz\'\nVERSION_ID="1.2.3"\n'
        'BROKEN LINE\nPRETTY_NAME="unterminated\nexport VARIANT=server\nEMPTY=\n'
    )
    env = os_collector.parse_os_release(text)
    assert env == {
        "NAME": 'Foo "Linux"',
        "ID": "foo",
        "ID_LIKE": "bar baz",
        "VERSION_ID": "1.2.3",
        "VARIANT": "server",
        "EMPTY": "",
    }
    assert os_collector.os_version("1.2.3") == 1.2
    assert os_collector.os_version("rolling") == 0.0
    assert os_collector.support_end("2028-03-15") == 1836691200.0  # midnight UTC
    assert os_collector.support_end("soon") is None


def test_os_falls_back_to_usr_lib_and_rereads_on_change(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {"usr/lib/os-release": 'NAME="Rolling"\nID=rolling\nVERSION_ID=rolling\nSUPPORT_END=2028-03-15\n'},
    )
    paths = Paths(rootfs=tmp_path)
    collector = build_collectors(["os"], paths, {})[0]
    text = render_text(collector.collect())
    assert 'name="Rolling"' in text
    assert "node_os_version" not in text  # no numeric version: no series rather than 0
    assert "node_os_support_end_timestamp_seconds 1.8366912e+09" in text
    write_tree(tmp_path, {"etc/os-release": 'NAME="Other"\nID=other\nVERSION_ID="7"\n'})
    text = render_text(collector.collect())
    assert 'name="Other"' in text and 'node_os_version{id="other",id_like="",name="Other"} 7' in text


# --- textfile -------------------------------------------------------------------------------------


def test_textfile_disabled_reports_no_error(tmp_path: Path) -> None:
    lines, ok = scrape(tmp_path, "textfile")
    assert ok and lines == ["node_textfile_scrape_error 0"]


def test_textfile_missing_directory_is_a_scrape_error(tmp_path: Path) -> None:
    lines, ok = scrape(tmp_path, "textfile", directory=str(tmp_path / "absent"))
    assert ok and lines == ["node_textfile_scrape_error 1"]


def test_textfile_bad_files_are_skipped_and_flagged(tmp_path: Path) -> None:
    write_tree(
        tmp_path / "tf",
        {
            "a_good.prom": '# TYPE jobs counter\njobs{queue="x"} 3\n# TYPE up gauge\nup 1\nup{extra="1"} 2\n',
            "b_garbage.prom": b"\x00\xff\xfe not metrics {{{\n",
            "c_timestamp.prom": "ts_metric 1 1441205977284\n",
            "d_type_late.prom": "late 1\n# TYPE late gauge\n",
            "ignored.txt": "not 1 2 3 read\n",
        },
    )
    lines, ok = scrape(tmp_path, "textfile", directory=str(tmp_path / "tf"))
    assert ok
    mtime = int(os.stat(tmp_path / "tf/a_good.prom").st_mtime)
    assert lines == [
        'jobs{queue="x"} 3',  # a counter keeps the name it was written with
        f'node_textfile_mtime_seconds{{file="{tmp_path}/tf/a_good.prom"}} {format_value(mtime)}',
        "node_textfile_scrape_error 1",
        'up{extra=""} 1',  # labels some series lack are added empty
        'up{extra="1"} 2',
    ]


def test_textfile_merges_files_and_drops_contradicting_families(tmp_path: Path) -> None:
    write_tree(
        tmp_path / "tf",
        {
            "a.prom": '# HELP shared One help.\n# TYPE shared gauge\nshared{f="a"} 1\n'
            "# TYPE kind gauge\nkind 1\n",
            "b.prom": '# HELP shared One help.\n# TYPE shared gauge\nshared{f="b"} 2\n',
            "c.prom": '# HELP shared Another help.\nshared{f="c"} 3\n# TYPE kind counter\nkind{f="c"} 4\n',
        },
    )
    result = read_textfiles(str(tmp_path / "tf"))
    assert result.errored
    assert [len(family.series) for family in result.families["shared"]] == [1, 1]
    assert len(result.families["kind"]) == 1
    lines, _ = scrape(tmp_path, "textfile", directory=str(tmp_path / "tf"))
    assert 'shared{f="a"} 1' in lines and 'shared{f="b"} 2' in lines and 'shared{f="c"} 3' not in lines


def test_textfile_directory_glob(tmp_path: Path) -> None:
    write_tree(tmp_path, {"d1/x.prom": "x 1\n", "d2/y.prom": "y 2\n"})
    lines, _ = scrape(tmp_path, "textfile", directory=str(tmp_path / "d*"))
    assert "x 1" in lines and "y 2" in lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# HELP a x\n# HELP a y\na 1\n", "second HELP"),
        ("a 1\n# TYPE a gauge\n", "TYPE"),
        ("# TYPE a sometype\na 1\n", "unknown metric type"),
        ('a{b="1",b="2"} 1\n', "duplicate label"),
        ('a{b="\\q"} 1\n', "escape"),
        ('a{b="1"', "expected ',' or '}'"),
        ('a{b="1', "unterminated"),
        ("a 1 2 3\n", "unexpected text"),
        ("a one\n", "invalid value"),
        ("a 0x1p3\n", "invalid value"),
        ("1a 1\n", "invalid metric name"),
        ('a{__name__="b"} 1\n', "reserved"),
    ],
)
def test_text_parser_rejects_what_node_exporter_rejects(text: str, message: str) -> None:
    with pytest.raises(_promtext.TextParseError, match=message):
        _promtext.parse_text(text)


def test_text_parser_groups_summaries_and_histograms() -> None:
    families = _promtext.parse_text(
        '# TYPE s summary\ns{a="1",quantile="0.5"} 1\ns_sum{a="1"} 5\ns_count{a="1"} 2\n'
        's{a="2",quantile="0.9"} 3\n'
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
        "# just a comment\n  indented 1\n"
    )
    summary = families["s"].series
    assert [(x.labels, x.quantiles, x.sum, x.count) for x in summary] == [
        ({"a": "1"}, {0.5: 1.0}, 5.0, 2.0),
        ({"a": "2"}, {0.9: 3.0}, 0.0, 0.0),
    ]
    assert families["h"].series[0].buckets == {1.0: 1.0, math.inf: 2.0}
    assert families["indented"].series[0].value == 1.0


def test_textfile_matches_node_exporters_textfile_fixtures() -> None:
    """Every case of node_exporter's own textfile tests: same series, values and scrape_error."""
    root = require_shared(FIXTURE_TEXTFILES)
    for expected in sorted(root.glob("*.out")):
        case = expected.stem
        directory = {
            "glob_extra_dimension": str(root / "*_extra_dimension"),
            "nonexistent_path": str(root / "nonexistent"),
        }.get(case, str(root / case))
        paths = Paths()
        text = render_text(
            run_collectors(build_collectors(["textfile"], paths, {"collector.textfile.directory": directory}))
        )
        assert _series(text) == _series(expected.read_text()), case


def _series(text: str) -> list[tuple[str, frozenset[tuple[str, str]], str]]:
    """(name, label set, value) of each sample line, ignoring go_*, mtime and scrape metrics."""
    out = []
    for line in text.splitlines():
        if line.startswith(("#", "go_", "node_textfile_mtime", "node_scrape_")) or not line:
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = frozenset(tuple(pair.split("=", 1)) for pair in labels.rstrip("}").split(",") if pair)
        out.append((name, pairs, value))
    return sorted(out)


# --- mdadm ----------------------------------------------------------------------------------------

MDSTAT = """Personalities : [raid1] [raid6]
md1 : active raid1 sdb1[1] sda1[0] sdc1[2](S)
      1000 blocks [2/2] [UU]
      [==>.....]  recovery = 12.6% (126/1000) finish=1.0min speed=1K/sec

md2 : active raid1 sdd1[0]
      garbage line
md3 : inactive sde[0](F)
      2000 blocks super 1.2

unused devices: <none>
"""


def test_mdstat_skips_a_malformed_array_and_keeps_the_rest() -> None:
    arrays = {md.name: md for md in mdadm.parse_mdstat(MDSTAT)}
    assert set(arrays) == {"md1", "md3"}
    assert (arrays["md1"].activity_state, arrays["md1"].blocks_synced, arrays["md1"].disks_spare) == (
        "recovering",
        126,
        1,
    )
    md3 = arrays["md3"]
    assert (md3.disks_active, md3.disks_failed, md3.blocks_synced) == (0, 1, 2000)


def test_mdadm_reads_sysfs_raid_disks_and_degraded(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "proc/mdstat": MDSTAT,
            "sys/block/md1/md/level": "raid1\n",
            "sys/block/md1/md/raid_disks": "2\n",
            "sys/block/md1/md/degraded": "1\n",
            "sys/block/md9/md/level": "raid0\n",
            "sys/block/md9/md/raid_disks": "3\n",
            "sys/block/md8/md/level": "raid5\n",
            "sys/block/md8/md/raid_disks": "x\n",  # bad: left out
            "sys/block/mdfoo/size": "1\n",  # no md/ directory: not an array
        },
    )
    lines, ok = scrape(tmp_path, "mdadm")
    assert ok
    assert [line for line in lines if line.startswith(("node_md_degraded", "node_md_raid_disks"))] == [
        'node_md_degraded{device="md1"} 1',
        'node_md_degraded{device="md9"} 0',
        'node_md_raid_disks{device="md1"} 2',
        'node_md_raid_disks{device="md9"} 3',
    ]
    assert 'node_md_state{device="md1",state="recovering"} 1' in lines


# --- hwmon ----------------------------------------------------------------------------------------


def test_hwmon_file_names_split_as_node_exporter() -> None:
    assert hwmon.split_sensor_file("temp1_crit_alarm") == ("temp", 1, "crit_alarm")
    assert hwmon.split_sensor_file("beep_enable") == ("beep_enable", 0, "")
    assert hwmon.split_sensor_file("in0_input") == ("in", 0, "input")
    assert hwmon.split_sensor_file("1temp") is None
    assert hwmon.clean_name("Core 0 (Package)") == "core_0__package"


def hwmon_tree(root: Path) -> Path:
    sensors = {
        "name": "coretemp\n",
        "temp1_input": "45000\n",
        "temp1_label": "Core 0\n",
        "temp1_max": "x\n",
        "temp2_input": "47000\n",
        "fan1_input": "1200\n",
        "in0_input": "800\n",
        "power1_average": "5000000\n",
        "energy1_input": "2000000\n",
        "curr1_input": "1500\n",
        "humidity1_input": "450000\n",
        "update_interval": "1000\n",
        "beep_enable": "1\n",
        "pwm1": "128\n",
        "name_unused": "x\n",
    }
    chip_dir = "sys/devices/platform/coretemp.0/hwmon/hwmon0"
    files: dict[str, str | bytes] = {f"{chip_dir}/{k}": v for k, v in sensors.items()}
    files["sys/devices/platform/coretemp.0/hwmon/hwmon0/temp3_label"] = b"Bad \xff label\n"
    files["sys/devices/platform/coretemp.0/hwmon/hwmon0/temp3_input"] = "1000\n"
    for n, chip in ((1, "radio0"), (2, "radio1")):  # two chips on one device
        files[f"sys/devices/wifi/phy0/hwmon/hwmon{n}/name"] = f"{chip}\n"
        files[f"sys/devices/wifi/phy0/hwmon/hwmon{n}/temp1_input"] = f"{50000 + n}\n"
    write_tree(root, files)
    (root / "sys/class/hwmon").mkdir(parents=True)
    (root / "sys/class/hwmon/hwmon0").symlink_to("../../devices/platform/coretemp.0/hwmon/hwmon0")
    (root / "sys/devices/platform/coretemp.0/hwmon/hwmon0/device").symlink_to("../..")
    for n in (1, 2):
        (root / f"sys/class/hwmon/hwmon{n}").symlink_to(f"../../devices/wifi/phy0/hwmon/hwmon{n}")
        (root / f"sys/devices/wifi/phy0/hwmon/hwmon{n}/device").symlink_to("../..")
    (root / "sys/class/hwmon/hwmon9").symlink_to("../../devices/gone")  # dangling: skipped
    return root


def test_hwmon_units_names_and_labels(tmp_path: Path) -> None:
    lines, ok = scrape(hwmon_tree(tmp_path), "hwmon")
    assert ok
    chip = 'chip="platform_coretemp_0"'
    for expected in [
        'node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1',
        f'node_hwmon_temp_celsius{{{chip},sensor="temp1"}} 45',
        f'node_hwmon_sensor_label{{{chip},label="Core 0",sensor="temp1"}} 1',
        f'node_hwmon_sensor_label{{{chip},label="Bad \ufffd label",sensor="temp3"}} 1',
        f'node_hwmon_fan_rpm{{{chip},sensor="fan1"}} 1200',
        f'node_hwmon_in_volts{{{chip},sensor="in0"}} 0.8',
        f'node_hwmon_power_average_watt{{{chip},sensor="power1"}} 5',
        f'node_hwmon_energy_joule_total{{{chip},sensor="energy1"}} 2',
        f'node_hwmon_curr_amps{{{chip},sensor="curr1"}} 1.5',
        f'node_hwmon_humidity{{{chip},sensor="humidity1"}} 0.45',
        f'node_hwmon_update_interval_seconds{{{chip},sensor="update_interval0"}} 1',
        f'node_hwmon_beep_enabled{{{chip},sensor="beep_enable0"}} 1',
        f'node_hwmon_pwm{{{chip},sensor="pwm1"}} 128',
        'node_hwmon_temp_celsius{chip="wifi_phy0_radio0",sensor="temp1"} 50.001',
        'node_hwmon_temp_celsius{chip="wifi_phy0_radio1",sensor="temp1"} 50.002',
    ]:
        assert expected in lines
    assert not any("temp_max" in line for line in lines)  # unparsable value: skipped


def test_hwmon_chip_and_sensor_filters(tmp_path: Path) -> None:
    root = hwmon_tree(tmp_path)
    lines, _ = scrape(root, "hwmon", chip_include="coretemp")
    assert lines and all("platform_coretemp_0" in line for line in lines)
    lines, _ = scrape(root, "hwmon", chip_exclude="coretemp")
    assert lines and not any("coretemp" in line.split("chip_name")[0] for line in lines)
    lines, _ = scrape(root, "hwmon", sensor_exclude="^platform_coretemp_0;temp[12]$")
    assert not any('sensor="temp1"' in line and "coretemp" in line for line in lines)
    assert any('sensor="temp3"' in line for line in lines)
    lines, _ = scrape(root, "hwmon", sensor_include="fan")
    assert [line for line in lines if "sensor=" in line] == [
        'node_hwmon_fan_rpm{chip="platform_coretemp_0",sensor="fan1"} 1200'
    ]


def test_hwmon_options_reject_bad_regexps() -> None:
    option = next(o for o in hwmon.HwmonCollector.options if o.name == "chip-include")
    with pytest.raises(ValueError):
        option.parse("(")


# --- thermal_zone, edac, powersupplyclass, watchdog -------------------------------------------------


def test_thermal_zone_skips_incomplete_zones_and_devices(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "sys/class/thermal/thermal_zone0/type": "acpitz\n",
            "sys/class/thermal/thermal_zone0/policy": "step_wise\n",
            "sys/class/thermal/thermal_zone0/temp": "-1500\n",
            "sys/class/thermal/thermal_zone1/type": "nopolicy\n",
            "sys/class/thermal/thermal_zone1/temp": "1\n",
            "sys/class/thermal/thermal_zone2/type": "bad\n",
            "sys/class/thermal/thermal_zone2/policy": "x\n",
            "sys/class/thermal/thermal_zone2/temp": "hot\n",
            "sys/class/thermal/cooling_device0/type": "intel_powerclamp\n",
            "sys/class/thermal/cooling_device0/max_state": "50\n",
            "sys/class/thermal/cooling_device0/cur_state": "-1\n",
            "sys/class/thermal/cooling_device1/type": "Fan\n",
        },
    )
    lines, ok = scrape(tmp_path, "thermal_zone")
    assert ok and lines == [
        'node_cooling_device_cur_state{name="0",type="intel_powerclamp"} -1',
        'node_cooling_device_max_state{name="0",type="intel_powerclamp"} 50',
        'node_thermal_zone_temp{type="acpitz",zone="0"} -1.5',
    ]


def test_edac_channels_labels_and_broken_controllers(tmp_path: Path) -> None:
    base = "sys/devices/system/edac/mc"
    write_tree(
        tmp_path,
        {
            f"{base}/mc0/ce_count": "1\n",
            f"{base}/mc0/ce_noinfo_count": "0\n",
            f"{base}/mc0/ue_count": "2\n",
            f"{base}/mc0/ue_noinfo_count": "0\n",
            f"{base}/mc0/csrow0/ce_count": "3\n",
            f"{base}/mc0/csrow0/ue_count": "4\n",
            f"{base}/mc0/csrow0/ch0_ce_count": "5\n",
            f"{base}/mc0/csrow0/ch0_dimm_label": "CPU#1_csrow0_channel0\n",
            f"{base}/mc0/csrow0/ch1_ce_count": "6\n",
            f"{base}/mc0/csrow0/ch1_ue_count": "7\n",
            f"{base}/mc0/csrow0/chX_ce_count": "8\n",
            f"{base}/mc1/ce_count": "not a number\n",
        },
    )
    lines, ok = scrape(tmp_path, "edac")
    assert ok
    assert (
        'node_edac_channel_correctable_errors_total{channel="0",controller="0",csrow="0",'
        'dimm_label="CPU1__csrow0__channel0"} 5'
    ) in lines
    assert (
        'node_edac_channel_uncorrectable_errors_total{channel="1",controller="0",csrow="0",'
        'dimm_label="unknown"} 7'
    ) in lines
    assert sum("channel_uncorrectable" in line for line in lines) == 1  # ch0 has no ue_count
    assert not any('controller="1"' in line for line in lines)


def test_powersupply_values_info_and_ignored_supplies(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            **{
                f"sys/class/power_supply/BAT0/{name}": value
                for name, value in {
                    "type": "Battery\n",
                    "voltage_now": "11660000\n",
                    "temp": "315\n",
                    "capacity": "010\n",
                    "cycle_count": "lots\n",
                    "health": "\n",
                    "model_name": b"LNV\xff\xfe\n",
                    "alarm": "0\n",
                }.items()
            },
            "sys/class/power_supply/AC/type": "Mains\n",
            "sys/class/power_supply/AC/online": "1\n",
        },
    )
    lines, ok = scrape(tmp_path, "powersupplyclass")
    assert ok
    assert 'node_power_supply_voltage_volt{power_supply="BAT0"} 11.66' in lines
    assert 'node_power_supply_temp_celsius{power_supply="BAT0"} 31.5' in lines
    assert 'node_power_supply_capacity{power_supply="BAT0"} 8' in lines  # Go base-0 parsing: octal
    assert not any("cyclecount" in line or "alarm" in line for line in lines)
    assert 'node_power_supply_info{model_name="LNV\ufffd",power_supply="BAT0",type="Battery"} 1' in lines
    lines, _ = scrape(tmp_path, "powersupplyclass", ignored_supplies="^BAT")
    assert lines == [
        'node_power_supply_info{power_supply="AC",type="Mains"} 1',
        'node_power_supply_online{power_supply="AC"} 1',
    ]


def test_watchdog_attributes_absent_and_malformed(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            **{
                f"sys/class/watchdog/watchdog0/{name}": value
                for name, value in {
                    "timeout": "60\n",
                    "bootstatus": "0x20\n",
                    "nowayout": "maybe\n",
                    "identity": "iTCO_wdt\n",
                }.items()
            },
        },
    )
    (tmp_path / "sys/class/watchdog/watchdog1").mkdir()
    lines, ok = scrape(tmp_path, "watchdog")
    assert ok and lines == [
        'node_watchdog_bootstatus{name="watchdog0"} 32',
        'node_watchdog_info{identity="",name="watchdog1",options="",pretimeout_governor="",state="",'
        'status=""} 1',
        'node_watchdog_info{identity="iTCO_wdt",name="watchdog0",options="",pretimeout_governor="",state="",'
        'status=""} 1',
        'node_watchdog_timeout_seconds{name="watchdog0"} 60',
    ]


def test_empty_class_directories_succeed_without_series(tmp_path: Path) -> None:
    for directory in ("class/power_supply", "class/watchdog", "class/thermal", "class/hwmon"):
        (tmp_path / "sys" / directory).mkdir(parents=True)
    for name in ("powersupplyclass", "watchdog", "thermal_zone", "hwmon"):
        assert scrape(tmp_path, name) == ([], True), name
