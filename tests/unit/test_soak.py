"""The soak's judgement and records (lab.soak), without namespaces: what counts as growing,
and how a run is recorded and resumed."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from lab import faults, soak
from lab.errors import UsageError, WaitTimeout
from lab.routers.events import Transition
from lab.sdn.client import ControllerClient
from lab.wait import wait_until


def _points(values: list[float]) -> list[tuple[int, float]]:
    return list(enumerate(values))


def _sample(cycle: int, mode: soak.Mode = "one-lab", **resources: float) -> soak.Sample:
    impl, fault = soak.plan(cycle, soak.IMPLS)
    return soak.Sample(cycle, mode, impl, fault, 1.5, 0.3, 0.3, None, dict(resources))


# --- judge --------------------------------------------------------------------------------------


def test_a_constant_series_is_flat() -> None:
    trend = soak.judge("runner.fds", _points([104.0] * 20))
    assert trend.verdict == "flat"
    assert trend.slope == 0 and trend.growth == 0
    assert (trend.first, trend.last, trend.low, trend.high) == (104, 104, 104, 104)


def test_one_descriptor_per_cycle_grows_within_twenty_cycles() -> None:
    trend = soak.judge("runner.fds", _points([100.0 + n for n in range(20)]))
    assert trend.verdict == "growing"
    assert trend.slope == pytest.approx(1.0)
    # Fitted after the warm-up: 18 cycles judged, 17 cycles of growth.
    assert trend.growth == pytest.approx(17.0)
    assert trend.bound == 1.0  # no noise: one descriptor, the quantum


def test_one_descriptor_per_cycle_grows_through_noise() -> None:
    rng = random.Random(17)
    values = [100.0 + n + rng.choice((-1, 0, 0, 1)) for n in range(20)]
    assert soak.judge("daemon.ha_second.fds", _points(values)).verdict == "growing"


def test_noise_alone_is_never_judged_growing() -> None:
    # Two hundred trendless series of the two kinds of noise the soak meets: counts that
    # wobble by one (a descriptor open at the moment of sampling) and a resident set that
    # moves by a few pages.
    for seed in range(200):
        rng = random.Random(seed)
        counts = [50.0 + rng.choice((-1, 0, 0, 0, 1)) for _ in range(20)]
        pages = [40_000.0 + 4 * rng.randint(-30, 30) for _ in range(500)]
        assert soak.judge("runner.fds", _points(counts)).verdict == "flat", seed
        assert soak.judge("runner.rss_kib", _points(pages)).verdict == "flat", seed


def test_a_single_step_is_not_a_leak() -> None:
    # A cache filled once halfway (one more descriptor for good) tilts a fitted line, but
    # the thirds do not all rise.
    values = [30.0] * 10 + [31.0] * 10
    trend = soak.judge("sdn.fds", _points(values))
    assert trend.slope > 0
    assert trend.verdict == "flat"


def test_a_short_run_asks_only_about_fast_leaks() -> None:
    # Eight cycles judged, a neighbour entry that came and then stayed: a one-unit step that
    # the line and the thirds cannot tell from a slow leak. A short run asks about leaks of
    # one per two cycles or faster, which a step is not; a leak per cycle still is.
    step = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert soak.judge("neigh.ha_first", _points(step)).verdict == "growing"
    assert soak.judge("neigh.ha_first", _points(step), min_rate=0.5).verdict == "flat"
    leak = [float(n) for n in range(10)]
    assert soak.judge("neigh.ha_first", _points(leak), min_rate=0.5).verdict == "growing"


def test_a_restarted_daemon_is_compared_by_role() -> None:
    # Every third cycle the daemon is restarted (stop, crash): its role's memory drops back and
    # grows again as the new process warms up. A sawtooth, not a trend.
    values = [13_000.0 + 200 * (n % 3) for n in range(60)]
    assert soak.judge("daemon.ha_first.rss_kib", _points(values)).verdict == "flat"


def test_slow_growth_in_a_noisy_series_is_found_over_a_long_run() -> None:
    rng = random.Random(5)
    values = [50_000.0 + 8 * n + rng.gauss(0, 200) for n in range(500)]
    trend = soak.judge("runner.rss_kib", _points(values))
    assert trend.verdict == "growing"
    assert trend.slope == pytest.approx(8, rel=0.1)


def test_growth_below_one_page_is_flat() -> None:
    page = os.sysconf("SC_PAGE_SIZE") / 1024
    values = [1000.0 + page * 0.9 * n / 19 for n in range(20)]
    assert soak.judge("sdn.rss_kib", _points(values)).verdict == "flat"


def test_too_few_cycles_are_not_judged() -> None:
    trend = soak.judge("runner.fds", _points([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert trend.verdict == "too short"
    assert (trend.first, trend.last) == (1.0, 5.0)


# --- series, verdicts, table ---------------------------------------------------------------------


def test_series_are_per_mode_and_implementation_except_the_runners() -> None:
    samples = [_sample(n, **{"runner.fds": 10, "sdn.fds": 8}) for n in range(4)]
    series = soak.series_of(samples)
    assert series["one-lab/runner.fds"] == [(n, 10) for n in range(4)]
    assert series["one-lab/keepalived/sdn.fds"] == [(0, 8), (2, 8)]
    assert series["one-lab/bundled/sdn.fds"] == [(1, 8), (3, 8)]
    assert series["one-lab/keepalived/cycle.detection"] == [(0, 0.3), (2, 0.3)]


def test_growing_leaves_timings_out_and_counts_only_leaves_memory_out() -> None:
    rising = [float(n) for n in range(30)]
    trends = [soak.judge(name, _points(rising)) for name in ("x/cycle.seconds", "x/a.rss_kib")]
    trends.append(soak.judge("x/a.fds", _points(rising)))
    assert [t.series for t in soak.growing(trends)] == ["x/a.rss_kib", "x/a.fds"]
    assert [t.series for t in soak.growing(trends, counts_only=True)] == ["x/a.fds"]
    table = soak.table(trends)
    assert "| x/a.fds | 30 | 0 | 29 | 0 | 29 | 1 |" in table
    assert "rising (timing, not judged)" in table


def test_nft_counts_count_rules_and_elements_per_table() -> None:
    ruleset = {
        "nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "bridge", "name": "vrrp_lab", "handle": 1}},
            {"set": {"family": "bridge", "table": "vrrp_lab", "name": "a", "elem": ["x", "y"]}},
            {"set": {"family": "bridge", "table": "vrrp_lab", "name": "b"}},
            {"rule": {"family": "bridge", "table": "vrrp_lab", "chain": "c", "expr": []}},
            {"table": {"family": "bridge", "name": "lab_faults", "handle": 2}},
        ]
    }
    assert soak.nft_counts(ruleset) == {
        "nft.bridge.vrrp_lab.rules": 1,
        "nft.bridge.vrrp_lab.elements": 2,
        "nft.bridge.lab_faults.rules": 0,
        "nft.bridge.lab_faults.elements": 0,
    }


def test_proc_stats_read_this_process() -> None:
    me = soak.proc_stats(os.getpid())
    assert me is not None
    assert me.fds > 0 and me.rss_kib > 0 and me.threads >= 1
    # A role's figures are its processes' sums. Summed on a sleeping child, whose figures do
    # not move between two reads (this process's may: other threads allocate and open files).
    with subprocess.Popen(["sleep", "60"]) as child:
        try:
            # Asleep in nanosleep: past exec and the dynamic loader, whose pages still move.
            wait_until(
                lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0],
                accept=lambda state: state == "S",
                timeout=10,
                what="the child sleep to be asleep",
            )
            alone = soak.proc_stats(child.pid)
            assert alone is not None and alone.threads == 1
            assert soak.role_stats([child.pid, child.pid]) == alone + alone
        finally:
            child.kill()
    figures = soak.runner_series()
    assert set(figures) == {
        "runner.fds",
        "runner.rss_kib",
        "runner.trimmed.rss_kib",
        "runner.threads",
        "runner.descendants",
    }


def test_the_trimmed_resident_set_leaves_out_freed_heap() -> None:
    # 20 MiB in 1 KiB blocks from glibc's heap (over pymalloc's 512-byte limit), freed while a
    # later block pins the heap's top: the freed pages stay resident (the raw figure) until
    # malloc_trim gives them back (the trimmed one).
    blocks = [bytes(1024) for _ in range(20 * 1024)]
    pin = bytes(1024)
    del blocks
    figures = soak.runner_series()
    assert figures["runner.rss_kib"] - figures["runner.trimmed.rss_kib"] >= 10 * 1024, figures
    assert len(pin) == 1024


# --- plan, records, resume ------------------------------------------------------------------------


def test_plan_alternates_implementations_and_gives_each_every_fault() -> None:
    plans = [soak.plan(n, soak.IMPLS) for n in range(2 * len(soak.FAULTS))]
    for impl in soak.IMPLS:
        assert [f for i, f in plans if i == impl] == list(soak.FAULTS)
    assert [i for i, _ in plans[:4]] == ["keepalived", "bundled", "keepalived", "bundled"]


def test_a_sample_round_trips_through_json() -> None:
    sample = _sample(3, "fresh-labs", **{"runner.fds": 9.0})
    assert soak.Sample.from_json(json.loads(json.dumps(sample.as_json()))) == sample


def test_records_append_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "soak" / "soak.jsonl"
    head = soak.header(soak.IMPLS, soak.FAULTS)
    records = soak.Records(path, head, resume=False)
    for n in range(3):
        records.append(_sample(n, **{"runner.fds": 10}))
    records.append(_sample(0, "fresh-labs", **{"runner.fds": 8}))
    records.close()

    with pytest.raises(UsageError, match="already holds 4 soak cycle"):
        soak.Records(path, head, resume=False)
    with pytest.raises(UsageError, match="continues the same soak only"):
        soak.Records(path, soak.header(["bundled"], soak.FAULTS), resume=True)

    resumed = soak.Records(path, head, resume=True)
    assert resumed.next_cycle("one-lab") == 3
    assert resumed.next_cycle("fresh-labs") == 1
    resumed.append(_sample(3))
    assert resumed.next_cycle("one-lab") == 4
    resumed.close()
    assert [(s.mode, s.cycle) for s in resumed.samples()] == [
        *(("one-lab", n) for n in range(3)),
        ("fresh-labs", 0),
        ("one-lab", 3),
    ]
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == head
    assert len(lines) == 6  # one header, never repeated


def test_a_line_cut_short_by_a_kill_is_dropped_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "soak.jsonl"
    head = soak.header(soak.IMPLS, soak.FAULTS)
    records = soak.Records(path, head, resume=False)
    records.append(_sample(0))
    records.close()
    with path.open("a") as f:
        f.write('{"type": "sample", "cycle": 1, "mo')
    resumed = soak.Records(path, head, resume=True)
    assert resumed.next_cycle("one-lab") == 1
    resumed.append(_sample(1))
    resumed.close()
    _, samples = soak.read_records(path)
    assert [s.cycle for s in samples] == [0, 1]


def test_a_damaged_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "soak.jsonl"
    path.write_text(json.dumps(soak.header(soak.IMPLS, soak.FAULTS)) + "\nnot json\n")
    with pytest.raises(UsageError, match=r"soak.jsonl:2: not a soak record"):
        soak.read_records(path)


def test_an_unknown_implementation_is_refused() -> None:
    with pytest.raises(UsageError, match="not frr"):
        soak.check_impls(["keepalived", "frr"])


# --- the runner's own records ---------------------------------------------------------------------


class _FilesOnly:
    """A node that is only a directory: what a router's log handling reads through."""

    name = "ha_first"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


def test_a_restarted_daemons_log_is_saved_by_what_it_gained(tmp_path: Path) -> None:
    from lab.routers.keepalived import KeepalivedRouter

    node = _FilesOnly(tmp_path)
    router = KeepalivedRouter(node, "global_defs {}\n")  # type: ignore[arg-type]
    log = node.path(router.log_path)
    log.parent.mkdir(parents=True)
    runs = ["first run: Entering MASTER STATE\n", "second run: Entering BACKUP STATE\n"]
    for text in runs:
        with log.open("a") as f:
            f.write(text)
        router._save_log()  # as a stop or a crash does
    # Each save read only what the daemon appended since the last one.
    assert router._log_saved == [r.encode() for r in runs]
    assert router.log_text() == "".join(runs)  # the node is still there: the file itself
    log.unlink()  # the lab is gone: the saved copy
    assert router.log_text() == "".join(runs)


# --- the lab's records, and forgetting them ------------------------------------------------------


def test_records_are_reported_never_judged_and_the_runner_only_when_they_are_forgotten() -> None:
    rising = [float(n) for n in range(30)]
    names = ("one-lab/bundled/records.sdn.events", "one-lab/runner.rss_kib", "one-lab/runner.fds")
    trends = [soak.judge(name, _points(rising)) for name in names]
    assert all(t.verdict == "growing" for t in trends)  # the rule's verdict is kept
    # The records are the lab's by design: shown, never judged.
    assert [t.series for t in soak.growing(trends)] == list(names[1:])
    # With the records kept, the runner's memory holds them: shown, not judged; counts are.
    kept = soak.growing(trends, records_kept=True)
    assert [t.series for t in kept] == ["one-lab/runner.fds"]
    table = soak.table(trends, records_kept=True)
    assert "growing (lab's records, not judged)" in table
    assert "growing (records kept, not judged)" in table
    # Across fresh labs the records go with each lab: the runner is judged either way.
    fresh = soak.judge("fresh-labs/runner.rss_kib", _points(rising))
    assert soak.growing([fresh], records_kept=True) == [fresh]


def test_forgetting_records_is_in_the_header_and_older_files_still_resume(tmp_path: Path) -> None:
    assert "forget_records" not in soak.header(soak.IMPLS, soak.FAULTS)
    path = tmp_path / "soak.jsonl"
    soak.Records(path, soak.header(soak.IMPLS, soak.FAULTS), resume=False).close()
    with pytest.raises(UsageError, match="continues the same soak only"):
        soak.Records(path, soak.header(soak.IMPLS, soak.FAULTS, forget_records=True), resume=True)


def _transition(at: float, instance: str, state: str) -> Transition:
    return Transition(at, "ha_first", instance, state, 100)


def test_a_router_forgets_its_records_but_its_state(tmp_path: Path) -> None:
    from lab.routers.keepalived import KeepalivedRouter

    node = _FilesOnly(tmp_path)
    router = KeepalivedRouter(node, "global_defs {}\n")  # type: ignore[arg-type]
    log = node.path(router.log_path)
    log.parent.mkdir(parents=True)
    log.write_text("first run\n")
    router._save_log()
    for n, (instance, state) in enumerate(
        [("VI_1", "BACKUP"), ("VI_2", "BACKUP"), ("VI_1", "MASTER"), ("VI_2", "FAULT")]
    ):
        router.events.append(_transition(n, instance, state))
    assert router.saved_log_bytes == len("first run\n")

    router.forget_records()
    assert router.saved_log_bytes == 0
    # Each instance's latest state stays, in order: the router's state reads from it.
    assert [(e.instance, e.state) for e in router.events] == [("VI_1", "MASTER"), ("VI_2", "FAULT")]
    assert router.events.latest().state == "FAULT"  # type: ignore[union-attr]
    assert router.events.latest("VI_1").state == "MASTER"  # type: ignore[union-attr]
    # The log is saved on by what it gains after the forgotten part, not again from the start.
    with log.open("a") as f:
        f.write("second run\n")
    router._save_log()
    assert router.saved_log_bytes == len("second run\n")


def test_the_controller_forgets_its_events_and_marks_stay_valid() -> None:
    lines = "".join(json.dumps({"t": n, "event": e}) + "\n" for n, e in enumerate("abc"))
    proc = subprocess.Popen(
        ["sh", "-c", 'printf "$1"; read -r line; echo "$line"; read -r line', "sh", lines],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    client = ControllerClient(proc, Path("/nonexistent"))
    try:
        client.wait_for(lambda e: e["event"] == "c", timeout=10, what="event c")
        assert client.forget_events() == 3
        assert client.events == [] and client.mark() == 3
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"t": 3, "event": "d"}) + "\n")
        proc.stdin.flush()
        event = client.wait_for(lambda e: True, timeout=10, what="the next event", since=3)
        assert event["event"] == "d" and client.mark() == 4
        with pytest.raises(WaitTimeout):  # a forgotten event is not found again
            client.wait_for(lambda e: e["event"] == "a", timeout=0, what="event a")
    finally:
        client._closing = True  # as the lab's teardown says before it ends the controller
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def test_the_fault_history_is_forgotten() -> None:
    class _Lab:  # what the fault state is keyed by
        pass

    lab = _Lab()
    faults._record(lab, "partition", "ha_first", 1.0)  # type: ignore[arg-type]
    faults._record(lab, "heal", "ha_first", 2.0)  # type: ignore[arg-type]
    assert [r.kind for r in faults.history(lab)] == ["partition", "heal"]  # type: ignore[arg-type]
    assert faults.forget_history(lab) == 2  # type: ignore[arg-type]
    assert faults.history(lab) == []  # type: ignore[arg-type]


# --- the runner's malloc arenas ----------------------------------------------------------------

#: A child that starts threads which allocate past pymalloc (glibc's malloc) while they all
#: live, then prints how many mappings start on glibc's 64 MiB per-thread-arena boundary.
_ARENA_CHILD = """
import sys, threading
from lab import linux
if sys.argv[1] == "one":
    assert linux.one_malloc_arena()
go = threading.Barrier(5)
def work():
    blocks = [bytearray(4096) for _ in range(64)]
    go.wait()
    go.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
go.wait()
arenas = 0
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split()
        start = int(fields[0].split("-")[0], 16)
        if len(fields) == 5 and start % (64 << 20) == 0 and "rw" in fields[1]:
            arenas += 1
go.wait()
for t in threads:
    t.join()
print(arenas)
"""


def test_one_malloc_arena_keeps_threads_out_of_arenas_of_their_own() -> None:
    """lab.linux.one_malloc_arena, which the soak and the CLI call before any thread: threads
    that allocate get no per-thread arena (glibc gives them some by default, here too)."""

    def arenas(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _ARENA_CHILD, mode],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return int(done.stdout)

    assert arenas("default") >= 1, "glibc made no per-thread arena: the test proves nothing"
    assert arenas("one") == 0


#: A child that frees an 8 MiB block (glibc maps it, and by default then raises its mmap
#: threshold to 8 MiB), trims the heap so that its free top cannot hold what comes next, then
#: allocates 4 MiB and prints whether that block was mapped (or the heap grown for it). A
#: block the heap's free memory can hold is cut from it whatever the threshold: hence the
#: trim, and a block far larger than anything a fresh interpreter's heap has free.
_MMAP_CHILD = """
import ctypes, sys
from lab import linux
if sys.argv[1] == "fixed":
    assert linux.fixed_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(8 << 20))
assert linux.malloc_trim()
before = linux.mallinfo().hblkhd
block = libc.malloc(4 << 20)
print(linux.mallinfo().hblkhd - before >= 4 << 20)
libc.free(block)
"""


def test_a_fixed_mmap_threshold_keeps_large_blocks_out_of_the_heap() -> None:
    """lab.linux.fixed_mmap_threshold, which the soak and the CLI call: after a large mapped
    block is freed, a block above the threshold that the heap cannot hold still gets a mapping
    of its own (by default glibc raises the threshold and grows the heap for it, here too)."""

    def mapped(mode: str) -> bool:
        done = subprocess.run(
            [sys.executable, "-c", _MMAP_CHILD, mode],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        return done.stdout.strip() == "True"

    assert not mapped("default"), "glibc kept mapping after the free: the test proves nothing"
    assert mapped("fixed")
