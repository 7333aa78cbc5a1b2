"""multigil.dask: a WorkerPlugin puts a multigil Pool behind a Dask
executor; annotated tasks run in its worker interpreters. Real
distributed.LocalCluster, in-process and with worker processes."""
import pytest

distributed = pytest.importorskip(
    "distributed", reason="needs dask.distributed (pip install "
    "'dask[distributed]'; in the bench extra of scripts/venv.sh)")
import dask  # noqa: E402

import helpers_dask as hd  # noqa: E402
from multigil.dask import Plugin  # noqa: E402


def graph():
    parts = [dask.delayed(hd.cpu)(1000 + i) for i in range(6)]
    total = parts[0]
    for p in parts[1:]:
        total = dask.delayed(hd.add)(total, p)
    return total


NO_PROFILER = {"distributed.worker.profile.enabled": False}


@pytest.fixture(params=[False, True], ids=["threads", "processes"])
def client(request):
    with dask.config.set(NO_PROFILER):
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=request.param,
            dashboard_address=None, worker_dashboard_address=None)
        c = distributed.Client(cluster)
        c.register_plugin(Plugin())
        yield c
        c.close()
        cluster.close()


def test_plugin_refuses_workers_with_the_profiler_on():
    """Dask's profiler calls sys._current_frames(), which corrupts memory
    while worker interpreters run Python (the bench crashed a worker with
    "free(): invalid pointer"): the plugin refuses, with what to do."""
    with dask.config.set({"distributed.worker.profile.enabled": True}), \
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=1, processes=False,
                dashboard_address=None,
                worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        with pytest.raises(RuntimeError, match="PROFILE__ENABLED=False"):
            c.register_plugin(Plugin())
        w = next(iter(cluster.workers.values()))
        assert "multigil" not in w.executors


def test_annotated_graph_runs_in_interpreters_and_matches(client):
    want = client.compute(graph()).result()
    with dask.annotate(executor="multigil"):
        got = client.compute(graph()).result()
    assert got == want == sum(hd.cpu(1000 + i) for i in range(6))
    with dask.annotate(executor="multigil"):
        ids = client.gather(client.map(hd.where, range(4)))
    assert [x for _, x in ids] == [0, 1, 2, 3]
    assert all(i != 0 for i, _ in ids)  # not the main interpreter


def test_exception_reaches_the_client_with_traceback(client):
    with dask.annotate(executor="multigil"):
        fut = client.submit(hd.boom, 3)
    with pytest.raises(ValueError, match="boom 3") as info:
        fut.result()
    notes = "".join(getattr(info.value, "__notes__", []))
    assert "in boom" in notes and "helpers_dask.py" in notes


def test_long_tasks_run(client):
    """Tasks longer than Dask's profile cycle (2 s by default)."""
    with dask.annotate(executor="multigil"):
        futs = client.map(hd.cpu, [4_000_000] * 2, pure=False)
    assert client.gather(futs) == [hd.cpu(4_000_000)] * 2


def test_plugin_teardown_shuts_the_pool_down():
    with dask.config.set(NO_PROFILER), distributed.LocalCluster(n_workers=1, threads_per_worker=1,
                                  processes=False, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        c.register_plugin(Plugin(name="mg2"))
        w = next(iter(cluster.workers.values()))
        pool = w.executors["mg2"].pool
        c.unregister_worker_plugin(_plugin_name(w))
        assert "mg2" not in w.executors
        assert pool._c.closed


def _plugin_name(worker):
    (name,) = [n for n, p in worker.plugins.items()
               if isinstance(p, Plugin)]
    return name


def test_preload_module_installs_the_executor():
    """`dask worker --preload multigil.dask`: dask_setup(worker)."""
    with dask.config.set(NO_PROFILER), distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False,
            preload=["multigil.dask"], dashboard_address=None,
            worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        w = next(iter(cluster.workers.values()))
        pool = w.executors["multigil"].pool
        assert pool.workers == 2
        with dask.annotate(executor="multigil"):
            assert c.submit(hd.where, 5).result()[1] == 5
    assert pool._c.closed  # the worker's close shut it down
