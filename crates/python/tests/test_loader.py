"""arrowfeed.Loader: permutations, epochs, seeds, ranks, resume in a new process, pickling,
fork and spawn, formats, errors; and PyTorch's DataLoader when torch is installed."""

import multiprocessing
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import arrowfeed


def ids(loader):
    return [int(x) for b in loader for x in b.column("id").to_pylist()]


def test_an_epoch_is_a_permutation_that_differs_by_epoch_and_repeats_by_seed(store_dir, table):
    n = table.num_rows
    for shuffle in ["global", "local", "none"]:
        loader = arrowfeed.Loader(store_dir, batch_size=64, shuffle=shuffle, seed=3, window=2)
        assert len(loader) == -(-n // 64)
        e0 = ids(loader)
        assert sorted(e0) == list(range(n)), shuffle
        loader.set_epoch(1)
        e1 = ids(loader)
        assert sorted(e1) == list(range(n))
        if shuffle == "none":
            assert e0 == e1 == list(range(n))
        else:
            assert e0 != e1, shuffle
            again = arrowfeed.Loader(store_dir, batch_size=64, shuffle=shuffle, seed=3, window=2)
            assert ids(again) == e0
            other = arrowfeed.Loader(store_dir, batch_size=64, shuffle=shuffle, seed=4, window=2)
            assert ids(other) != e0


def test_ranks_are_disjoint_with_equal_lengths(store_dir, table):
    n = table.num_rows
    world = 3
    loaders = [arrowfeed.Loader(store_dir, batch_size=100, seed=1, rank=r, world_size=world)
               for r in range(world)]
    assert len({len(l) for l in loaders}) == 1
    seen = [ids(l) for l in loaders]
    flat = [x for s in seen for x in s]
    assert len(flat) == len(set(flat)) == (n // world) * world


def test_rank_defaults_come_from_the_environment(store_dir, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = arrowfeed.Loader(store_dir, batch_size=10)
    assert loader.state_dict()["rank"] == 1 and loader.state_dict()["world_size"] == 2
    with pytest.raises(ValueError):
        arrowfeed.Loader(store_dir, rank=1)


def test_resume_mid_epoch_in_a_fresh_loader_and_a_new_process(store_dir, tmp_path):
    loader = arrowfeed.Loader(store_dir, batch_size=50, seed=9, workers=3)
    loader.set_epoch(2)
    full = [b.column("id").to_pylist() for b in loader]
    loader.set_epoch(2)
    it = iter(loader)
    head = [next(it).column("id").to_pylist() for _ in range(7)]
    state = loader.state_dict()
    assert state["position"] == 7 and state["epoch"] == 2
    fresh = arrowfeed.Loader(store_dir, batch_size=50, seed=9, workers=1)
    fresh.load_state_dict(state)
    rest = [b.column("id").to_pylist() for b in fresh]
    assert head + rest == full
    # In another interpreter, from the dict alone.
    script = (
        "import arrowfeed, json, sys\n"
        f"l = arrowfeed.Loader({str(store_dir)!r}, batch_size=50, seed=9)\n"
        "l.load_state_dict(json.loads(sys.argv[1]))\n"
        "print(json.dumps([b.column('id').to_pylist() for b in l]))\n"
    )
    import json
    out = subprocess.run([sys.executable, "-c", script, json.dumps(state)], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == rest
    with pytest.raises(ValueError, match="seed"):
        arrowfeed.Loader(store_dir, batch_size=50, seed=8).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        arrowfeed.Loader(store_dir, batch_size=51, seed=9).load_state_dict(state)


@pytest.mark.parametrize("old,new", [(2, 3), (4, 1), (1, 2), (3, 3)])
def test_an_epoch_resumes_on_another_number_of_ranks(store_dir, table, old, new):
    """Checkpointed on `old` ranks in lockstep, resumed on `new`: no row twice, and only the
    remainder policy's rows (fewer than the ranks) left out."""
    kw = dict(batch_size=37, seed=4)
    ranks = [arrowfeed.Loader(store_dir, rank=r, world_size=old, **kw) for r in range(old)]
    seen = []
    states = []
    for loader in ranks:
        loader.set_epoch(1)
        it = iter(loader)
        for _ in range(len(loader) // 2):
            seen += next(it).column("id").to_pylist()
        states.append(loader.state_dict())
    assert len({s["position"] for s in states}) == 1
    lengths = set()
    for r in range(new):
        loader = arrowfeed.Loader(store_dir, rank=r, world_size=new, **kw)
        loader.load_state_dict(states[r % old])
        rest = [b.column("id").to_pylist() for b in loader]
        lengths.add(len(rest))
        seen += [x for b in rest for x in b]
    assert len(lengths) == 1, "every new rank gets the same number of batches"
    assert len(seen) == len(set(seen))
    assert table.num_rows - len(seen) < max(old, new)
    with pytest.raises(ValueError, match="batch_size"):
        arrowfeed.Loader(store_dir, rank=0, world_size=new, batch_size=38, seed=4).load_state_dict(states[0])
    with pytest.raises(ValueError, match="version 1"):
        arrowfeed.Loader(store_dir, **kw).load_state_dict({**states[0], "version": 1, "state": None} | {"state": "arrowfeed-loader/v1:4:1:3"})


def test_a_loader_pickles_with_its_position(store_dir):
    loader = arrowfeed.Loader(store_dir, batch_size=100, seed=2)
    it = iter(loader)
    next(it), next(it)
    copy = pickle.loads(pickle.dumps(loader))
    assert copy.state_dict() == loader.state_dict()
    assert ids(copy) == [x for b in it for x in b.column("id").to_pylist()]


def _epoch_ids(loader, q):
    q.put(ids(loader))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_loader_works_in_forked_and_spawned_processes(store_dir, method):
    loader = arrowfeed.Loader(store_dir, batch_size=100, seed=5)
    want = ids(loader)  # threads and maps of this process exist before the fork
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_epoch_ids, args=(loader, q))
    p.start()
    got = q.get(timeout=120)
    p.join(timeout=60)
    assert p.exitcode == 0
    assert got == want


def test_numpy_format(store_dir, table):
    loader = arrowfeed.Loader(store_dir, batch_size=128, shuffle="none", format="numpy",
                              columns=["id", "label", "text"])
    batch = next(iter(loader))
    assert set(batch) == {"id", "label", "text"}
    assert batch["id"].dtype == np.int64 and batch["label"].dtype == np.int32
    assert list(batch["id"]) == list(range(128))
    assert batch["text"][3] == table.column("text")[3].as_py()


def test_bad_arguments_are_value_errors(store_dir, tmp_path):
    for kwargs in [dict(shuffle="sometimes"), dict(format="pandas"), dict(batch_size=0),
                   dict(workers=0), dict(columns=["nope"])]:
        with pytest.raises(ValueError):
            arrowfeed.Loader(store_dir, **kwargs)
    with pytest.raises(OSError):
        arrowfeed.Loader(tmp_path / "absent")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_torch_dataloader_splits_an_epoch_among_its_workers(store_dir, table, num_workers):
    # torch from PyPI brings several GB of CUDA packages, so CI's venv has none: this runs
    # where torch is installed (see docs/benchmarks.md for the run that did).
    torch = pytest.importorskip("torch")
    from arrowfeed.torch import IterableDataset
    ds = IterableDataset(store_dir, batch_size=64, seed=11, format="torch", columns=["id", "label"])
    assert isinstance(ds, torch.utils.data.IterableDataset)
    dl = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers)
    got = [int(x) for b in dl for x in b["id"].tolist()]
    want = ids(arrowfeed.Loader(store_dir, batch_size=64, seed=11, columns=["id"]))
    assert got == want
    assert sorted(got) == list(range(table.num_rows))
