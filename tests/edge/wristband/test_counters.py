"""Defect 7: anti-replay counters survive a crash, not only a clean stop.

The crash is real: a gateway process hears adverts, raises an alert from them, and is killed
with SIGKILL (no stop, no atexit). A new gateway on the same data directory must refuse an
advert captured before the crash, count it and raise the cloned-device alert.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from bridges.ble.advert import BandAdvert, encode_advert
from bridges.ble.sources import HeardAdvert
from edge.bus import BusConfig
from edge.protocol import AlertKind, DeviceKind
from edge.wristband.counters import BandCounterStore
from edge.wristband.demo import GATEWAY, demo_config
from edge.wristband.service import WristbandService
from tests.support.broker import BrokerHarness
from tests.support.waiting import wait_until

ORIGIN = (114.0570, 22.5430)
KEY = bytes(range(16))

GATEWAY_THAT_CRASHES = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bridges.ble.advert import BandAdvert, encode_advert
    from bridges.ble.sources import HeardAdvert
    from edge.bus import BusConfig
    from edge.wristband.demo import demo_config
    from edge.wristband.service import WristbandService

    mqtt = BusConfig.model_validate_json(sys.argv[1])
    data_dir, site, key = Path(sys.argv[2]), sys.argv[3], bytes.fromhex(sys.argv[4])
    config = demo_config(site, mqtt, data_dir, (114.0570, 22.5430))
    band = config.bands[0].band_id
    service = WristbandService(config, keys={b.band_id: (key,) for b in config.bands},
                               sources=[])
    service.start()
    for counter in range(1, 6):
        adv = BandAdvert(band, counter, 80, sos=counter == 5)
        service.submit(HeardAdvert("rx", "02:00:00:00:10:01", -60,
                                   {config.company_id: encode_advert(adv, key)}, 0.1 * counter))
    # The SOS of advert 5 is raised once the batch is done: everything heard has had effect.
    deadline = time.monotonic() + 20
    while service.runtime.counters["alerts"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    print("accepted", service.tracker.counters["verdict_accepted"], flush=True)
    time.sleep(600)  # killed here, never stopped
""")


def _heard(config_company: int, band: int, counter: int, t: float) -> HeardAdvert:
    frame = encode_advert(BandAdvert(band, counter, 80, sos=counter == 5), KEY)
    return HeardAdvert("rx", "02:00:00:00:10:01", -60, {config_company: frame}, t)


def test_a_captured_advert_is_refused_after_the_gateway_was_killed(
        broker: BrokerHarness, site: str, tmp_path: Path) -> None:
    mqtt = broker.add_device(site, DeviceKind.WRISTBAND, GATEWAY)
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-c", GATEWAY_THAT_CRASHES, mqtt.model_dump_json(), str(data_dir),
         site, KEY.hex()], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["accepted", "5"]
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -9

    config = demo_config(site, mqtt, data_dir, ORIGIN)
    band = config.bands[0].band_id
    raised: list[AlertKind] = []
    service = WristbandService(config, keys={b.band_id: (KEY,) for b in config.bands},
                               sources=[], on_alert=lambda intent: raised.append(intent.kind))
    service.start()
    try:
        # The attacker replays advert 3, captured before the crash.
        service.submit(_heard(config.company_id, band, 3, 10.0))
        # The verdict is counted when the advert is judged; its alert is raised once the
        # batch's counters are on disk, a moment later: wait for both.
        wait_until(lambda: service.tracker.counters["verdict_replayed"] == 1 and raised,
                   message="the replay refused and its alert raised")
        assert service.tracker.counters["verdict_accepted"] == 0
        assert raised == [AlertKind.CLONED_DEVICE]
        assert service.runtime.health_message().metrics["adverts_replayed"] == 1.0
        # The band itself carries on where it was: its next advert is accepted.
        service.submit(_heard(config.company_id, band, 6, 11.0))
        wait_until(lambda: service.tracker.counters["verdict_accepted"] == 1,
                   message="the band's next advert accepted")
    finally:
        service.stop()


def test_store_persists_only_advances_and_never_lowers(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    store = BandCounterStore(path)
    assert store.save({1: 10, 2: 5}) == 2
    assert store.save({1: 10, 2: 5}) == 0  # nothing advanced: no write, no fsync
    assert store.save({1: 9, 2: 6}) == 1  # only band 2 moved up
    assert store.writes == 2
    store.close()
    # A second process with a stale view must not lower what the first one stored.
    other = BandCounterStore(path)
    stale = BandCounterStore(path)
    assert other.save({1: 20}) == 1
    stale._saved[1] = 0  # simulate a view taken before ``other`` wrote
    stale.save({1: 15})
    stale.close()
    other.close()
    reopened = BandCounterStore(path)
    assert reopened.load() == {1: 20, 2: 6}
    reopened.close()


def test_counters_of_the_old_json_file_are_taken_over(tmp_path: Path) -> None:
    legacy = tmp_path / "gw-band-counters.json"
    legacy.write_text(json.dumps({"4097": 41}), encoding="utf-8")
    store = BandCounterStore(tmp_path / "gw.sqlite", legacy_json=legacy)
    assert store.load() == {4097: 41}
    assert not legacy.exists()
    store.close()


def test_an_unreadable_legacy_file_is_ignored(tmp_path: Path) -> None:
    legacy = tmp_path / "gw-band-counters.json"
    legacy.write_text("[not json", encoding="utf-8")
    store = BandCounterStore(tmp_path / "gw.sqlite", legacy_json=legacy)
    assert store.load() == {}
    store.close()


def test_every_accepted_advert_is_persisted_before_its_alert(tmp_path: Path,
                                                             broker: BrokerHarness,
                                                             site: str) -> None:
    mqtt: BusConfig = broker.add_device(site, DeviceKind.WRISTBAND, GATEWAY)
    config = demo_config(site, mqtt, tmp_path, ORIGIN)
    band = config.bands[0].band_id
    stored_at_alert: list[dict[int, int]] = []
    service: WristbandService

    def on_alert(_intent: object) -> None:
        assert service.counter_store is not None
        reader = BandCounterStore(service.counter_store.path)
        stored_at_alert.append(reader.load())
        reader.close()

    service = WristbandService(config, keys={b.band_id: (KEY,) for b in config.bands},
                               sources=[], on_alert=on_alert)
    service.start()
    try:
        for counter in range(1, 6):
            service.submit(_heard(config.company_id, band, counter, 0.1 * counter))
        wait_until(lambda: bool(stored_at_alert), message="the SOS alert")
    finally:
        service.stop()
    # When the SOS of advert 5 existed, counter 5 was already on disk (read by another
    # connection, so it is committed, not just cached).
    assert stored_at_alert[0][band] == 5
