from ant_scheduler.monitor.adgs import AdgsConfig, AdgsTracker, ExternalUse, external_use

CFG = AdgsConfig(usage_threshold=0.5, mem_threshold=0.5, window=20)
IDLE = ExternalUse(0.0, 0.0, False)
HEAVY = ExternalUse(0.9, 0.1, True)


def feed(
    tracker: AdgsTracker, start: float, end: float, use: ExternalUse, step: float = 1
) -> list[bool]:
    out = []
    t = start
    while t <= end:
        out.append(tracker.update(0, t, use))
        t += step
    return out


def test_busy_only_after_a_full_window_of_outside_use() -> None:
    tracker = AdgsTracker(CFG)
    assert not any(feed(tracker, 0, 30, IDLE))
    states = feed(tracker, 31, 60, HEAVY)
    # Use began at t=31: not busy before t=51 (a whole window later), busy from then on.
    assert not any(states[:20]) and all(states[20:])


def test_released_only_after_a_quiet_window_and_no_flapping() -> None:
    tracker = AdgsTracker(CFG)
    feed(tracker, 0, 25, HEAVY)
    assert tracker.is_busy(0)
    states = feed(tracker, 26, 50, IDLE)
    assert all(states[:19]) and not states[-1]
    # A short spike does not make it busy again.
    assert not any(feed(tracker, 51, 53, HEAVY) + feed(tracker, 54, 70, IDLE))


def test_average_decides_not_single_samples() -> None:
    tracker = AdgsTracker(CFG)
    low = ExternalUse(0.3, 0.0, True)
    high = ExternalUse(0.9, 0.0, True)
    states = [tracker.update(0, t, high if t % 2 else low) for t in range(0, 40)]
    assert states[-1]  # mean 0.6 >= 0.5
    tracker = AdgsTracker(CFG)
    states = [tracker.update(0, t, ExternalUse(0.4, 0.0, True)) for t in range(0, 40)]
    assert not any(states)


def test_memory_threshold_alone_counts() -> None:
    tracker = AdgsTracker(CFG)
    assert feed(tracker, 0, 25, ExternalUse(0.0, 0.7, True))[-1]


def test_external_use_split() -> None:
    mine = external_use(
        util=0.9, mem_used=8, mem_total=16, external_mem=2, external_processes=True, ant_owned=True
    )
    assert (mine.util, mine.mem) == (0.0, 0.125)
    theirs = external_use(
        util=0.9, mem_used=8, mem_total=16, external_mem=2, external_processes=True, ant_owned=False
    )
    assert (theirs.util, theirs.mem) == (0.9, 0.5)
    unseen = external_use(
        util=0.8,
        mem_used=0,
        mem_total=16,
        external_mem=0,
        external_processes=False,
        ant_owned=False,
    )
    assert unseen.present  # busy GPU with no visible process (another container) still counts
    assert not IDLE.present
