"""The read/infer/write pipeline keeps order, overlaps its steps and stops on the first error."""

import threading

import pytest

from timeseg.core.pipeline import Cancelled, run_pipeline


def test_items_are_written_in_order_with_each_step_in_its_own_thread():
    threads = {"read": set(), "infer": set(), "write": set()}
    written = []

    def step(name, function):
        def run(*args):
            threads[name].add(threading.get_ident())
            return function(*args)
        return run

    run_pipeline(range(20), step("read", lambda i: i * 2), step("infer", lambda x: x + 1),
                 step("write", lambda item, result: written.append((item, result))))
    assert written == [(i, 2 * i + 1) for i in range(20)]
    assert all(len(ids) == 1 for ids in threads.values())
    assert len(set.union(*threads.values())) == 3


def test_reading_overlaps_inference():
    """While the first item is being inferred, the reader already reads the next one."""
    read_events = [threading.Event() for _ in range(4)]
    overlapped = []

    def read(i):
        read_events[i].set()
        return i

    def infer(i):
        if i == 0:
            overlapped.append(read_events[1].wait(timeout=10))
        return i

    run_pipeline(range(4), read, infer, lambda item, result: None)
    assert overlapped == [True]


@pytest.mark.parametrize("failing", ["read", "infer", "write"])
def test_the_first_error_stops_the_pipeline_and_is_raised(failing):
    seen = []

    def maybe_fail(name, value):
        if name == failing and value == 3:
            raise OSError(f"{name} failed")
        return value

    with pytest.raises(OSError, match=f"{failing} failed"):
        run_pipeline(range(100), lambda i: maybe_fail("read", i), lambda x: maybe_fail("infer", x),
                     lambda item, result: seen.append(maybe_fail("write", result)))
    assert len(seen) < 10


def test_cancel():
    calls = []
    with pytest.raises(Cancelled):
        run_pipeline(range(100), lambda i: i, lambda x: x, lambda item, result: calls.append(item),
                     cancelled=lambda: len(calls) >= 2)
    assert len(calls) < 10


def test_with_two_workers_two_items_are_inferred_at_once_and_written_in_order():
    both_running = threading.Barrier(2, timeout=10)  # broken (an error) unless two infer calls overlap
    written = []

    def infer(x):
        if x < 2:
            both_running.wait()
        return x * 10

    run_pipeline(range(12), lambda i: i, infer, lambda item, result: written.append((item, result)), workers=2)
    assert written == [(i, i * 10) for i in range(12)]


def test_an_inference_error_with_two_workers_is_raised_and_stops_the_rest():
    inferred = []

    def infer(x):
        if x == 3:
            raise ValueError("infer failed")
        inferred.append(x)
        return x

    with pytest.raises(ValueError, match="infer failed"):
        run_pipeline(range(100), lambda i: i, infer, lambda item, result: None, workers=2)
    assert len(inferred) < 10


def test_the_next_inference_starts_while_results_wait_for_the_writer():
    """With one worker, inference goes on while this thread is held up handing results to a slow writer:
    the next item waits in the pool, not for this thread."""
    fifth_started = threading.Event()
    waited = []

    def infer(x):
        if x == 4:
            fifth_started.set()
        return x

    def write(item, result):
        if item == 0:  # the writer holds item 0; the queue to it fills with 1 and 2; handing over 3 blocks
            waited.append(fifth_started.wait(timeout=10))

    run_pipeline(range(8), lambda i: i, infer, write, workers=1)
    assert waited == [True]
