"""mg.Pipeline: stages, order, backpressure, and the failures pipeline
libraries get wrong (pypeln #110, #119, #107, #13): an exception in a stage
or in the source stops everything and re-raises in the consumer with the
stage name and the worker's traceback, also while the input is throttled;
leaving early or Ctrl-C shuts down with no hang and no leaked thread or
pool."""
import itertools
import threading
import time
import _thread

import pytest

import multigil as mg
import multigil._core as _core
from helpers_queue import fail_at, sleep_forever, slow_identity, square


def pipeline_threads():
    return [t for t in threading.enumerate()
            if t.name == "multigil-pipeline"]


@pytest.fixture(autouse=True)
def no_leaks():
    before = len(_core._live_pools())
    yield
    assert pipeline_threads() == []
    # The run's pool was shut down: no interpreter is left. (A pool whose
    # start-up a Ctrl-C interrupted is orphaned and leaves the registry
    # once its workers, which skip or end their interpreters, are done:
    # allow them a few seconds, slow under ASan.)
    end = time.monotonic() + 20
    while len(_core._live_pools()) != before and time.monotonic() < end:
        time.sleep(0.01)
    assert len(_core._live_pools()) == before


def test_stages_in_input_order():
    src = range(200)
    out = list(mg.Pipeline(src).map(square, workers=3)
               .filter(lambda x: x % 3 != 0, workers=2)
               .flat_map(lambda x: [x, -x]).batch(7).unbatch())
    assert out == [y for x in src if (x * x) % 3 != 0
                   for y in (x * x, -x * x)]


def test_batch_regroups_and_flushes_the_tail():
    assert list(mg.Pipeline(range(10)).batch(4)) == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(mg.Pipeline([[1, 2], [], [3]]).unbatch()) == [1, 2, 3]


def test_unordered_yields_everything_once():
    out = list(mg.Pipeline(range(300), ordered=False)
               .map(slow_identity, workers=3))
    assert sorted(out) == list(range(300))


def test_endless_source_is_throttled_and_break_shuts_down():
    src = itertools.count()
    it = iter(mg.Pipeline(src, maxsize=4).map(square, workers=2))
    got = [next(it) for _ in range(50)]
    assert got == [x * x for x in range(50)]
    # Backpressure: the feeder stopped well short of an endless read.
    ahead = next(src)
    assert ahead < 50 + 200
    it.close()  # what `break` does to the generator
    assert pipeline_threads() == []


def test_stage_exception_reraised_with_stage_name_and_traceback():
    with pytest.raises(ValueError, match="bad record 36") as ei:
        list(mg.Pipeline(range(10_000), maxsize=4)
             .map(square).map(fail_at, workers=2).map(square))
    exc = ei.value
    assert any("map(fail_at)#1" in n for n in exc.__notes__)
    assert isinstance(exc.__cause__, mg.RemoteTraceback)
    assert "fail_at" in str(exc.__cause__)


def test_source_exception_propagates():
    def source():
        yield from range(10)
        raise KeyError("source broke")
    with pytest.raises(KeyError, match="source broke") as ei:
        list(mg.Pipeline(source()).map(square, workers=2))
    assert any("source" in n for n in ei.value.__notes__)


def test_exception_in_the_loop_body_shuts_down():
    with pytest.raises(RuntimeError):
        for x in mg.Pipeline(itertools.count()).map(square, workers=2):
            if x > 100:
                raise RuntimeError("consumer failed")


def test_ctrl_c_in_the_consumer_shuts_down():
    p = mg.Pipeline(itertools.count()).map(sleep_forever, workers=2)
    timer = threading.Timer(0.1, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in p:
            pass
    timer.join()


def test_bad_arguments():
    with pytest.raises(TypeError):
        mg.Pipeline([]).map(3)
    with pytest.raises(ValueError):
        mg.Pipeline([]).map(square, workers=0)
    with pytest.raises(ValueError):
        mg.Pipeline([]).batch(0)
    assert list(mg.Pipeline([])) == []
