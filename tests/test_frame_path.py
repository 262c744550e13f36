"""The frame's path by its contracts: the pipeline runs workers it knows only as
``process(image) -> Processed``, and sizes the source's ring so frames in flight stay intact."""
import numpy as np
import pytest

from edge_fixtures import tiny_estimator
from openpose_plus.benches.pipeline import ReplaySource  # frames in memory, copied into the ring
from openpose_plus.edge.pipeline import Pipeline
from openpose_plus.edge.sources import Source, SourceEnded
from openpose_plus.edge.synthetic.scene import MovingScene
from openpose_plus.edge.worker import FrameError, GroupingError, InferenceWorker, Processed


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    with tiny_estimator(tmp_path_factory.mktemp("b")) as est:
        yield est


class Numbered(Source):
    """Frames as fast as it is read, each filled with its own index (mod 256): a frame that
    a later capture overwrote shows someone else's number."""

    def __init__(self, count, live=True, size=(120, 160), ring=2):
        super().__init__("numbered://", ring)
        self.count, self.live, self.size = count, live, size

    def read(self):
        if self.index >= self.count:
            raise SourceEnded("numbered ended")
        buf = self.ring.get(*self.size)
        buf.fill(self.index % 256)
        return self._frame(buf)


def test_the_pipeline_sizes_the_ring_to_its_window():
    class Pool:  # the pipeline asks no more of an estimator than this (WorkerPool)
        def auto_workers(self):
            return 3

        def workers(self, n):
            return [None] * n

    for mode, queue, workers, window in (("pipelined", 2, 3, 8), ("pipelined", 5, 1, 7), ("sequential", 2, 3, 4)):
        src = Numbered(1)
        p = Pipeline(Pool(), src, mode=mode, queue_size=queue, infer_workers=workers)
        assert p.window == window
        # the window's frames, the one capture holds while waiting for room, the one being captured
        assert src.ring.size == window + 2
    small = Numbered(1)
    small.ring.ensure(40)
    Pipeline(Pool(), small, queue_size=1, infer_workers=1)
    assert small.ring.size == 40  # only ever grows


def test_keep_in_flight_and_drop_decide_which_buffer_comes_next():
    src = Numbered(100)
    src.keep_in_flight(4)
    addrs = [src.read().image.ctypes.data for _ in range(10)]
    assert len(set(addrs[:5])) == 5 and addrs[5:10] == addrs[:5]  # 4 kept + the one being captured
    kept = src.read()
    src.drop(kept)  # not used: its buffer takes the next frame
    again = src.read()
    assert again.image.ctypes.data == kept.image.ctypes.data and again.index == kept.index + 1
    src.drop(src.read())
    src.drop(again)  # not the last one handed out: ignored, nothing in flight is reused
    assert src.read().image.ctypes.data not in (again.image.ctypes.data,)
    with pytest.raises(ValueError, match="at least 1"):
        src.keep_in_flight(0)


def test_a_live_source_dropping_frames_never_overwrites_those_in_flight(estimator):
    """A camera faster than the network: most frames are dropped at capture, and the ring
    turns only for the frames taken, so each frame reaches the sinks as it was captured."""
    wrong = []

    def on_frame(r):
        if r.image[0, 0, 0] != r.index % 256 or r.image[-1, -1, 2] != r.index % 256:
            wrong.append((r.index, int(r.image[0, 0, 0])))

    p = Pipeline(estimator, Numbered(3000), infer_workers=2, queue_size=1, on_frame=on_frame)
    p.run()
    assert p.capture_drops > 0 and p.frames + p.capture_drops == 3000
    assert not wrong, wrong[:5]


def _images(n=4):
    scene = MovingScene(160, 120, 2, seed=5)
    return [scene.frame(i)[0] for i in range(n)]


class Faulty:
    """A real worker that loses chosen frames the way a worker may: FrameError, GroupingError."""

    def __init__(self, worker, bad):
        self.worker, self.bad, self.threads, self.seen = worker, bad, worker.threads, 0

    def process(self, image):
        self.seen += 1
        kind = self.bad.get(self.seen)
        if kind == "frame":
            raise FrameError("unusable frame %d" % self.seen)
        if kind == "group":
            raise GroupingError("maps of frame %d unreadable" % self.seen)
        return self.worker.process(image)


class Pool:
    def __init__(self, workers):
        self._workers = workers

    def auto_workers(self):
        return len(self._workers)

    def workers(self, n):
        return self._workers[:n]


def test_the_pipeline_runs_any_worker_and_loses_only_the_frames_it_cannot_use(estimator):
    faulty = Faulty(estimator.workers(1)[0], {3: "frame", 5: "group", 6: "group"})
    got = []
    p = Pipeline(Pool([faulty]), ReplaySource(_images(), 12), mode="sequential",
                 on_frame=lambda r: got.append((r.index, r.poses, r.timings)))
    p.run()
    assert p.error is None and p.frames == 9 and faulty.seen == 12
    assert p.frame_errors == {"frame": 1, "group": 2}
    assert [i for i, _, _ in got] == [0, 1, 3, 6, 7, 8, 9, 10, 11]
    for i, poses, timings in got:  # the same poses the estimator gives for the same image
        ref = estimator.infer(_images()[i % 4])
        np.testing.assert_array_equal(poses.keypoints, ref.keypoints)
        assert timings["infer"] > 0 and timings["preprocess"] > 0


def test_a_worker_that_fails_otherwise_stops_the_pipeline(estimator):
    class Broken(Faulty):
        def process(self, image):
            raise OSError("the accelerator went away")

    p = Pipeline(Pool([Broken(estimator.workers(1)[0], {})]), ReplaySource(_images(), 50), infer_workers=1)
    p.run()
    assert isinstance(p.error, OSError) and p.frames == 0


def test_infer_is_the_workers_path(estimator):
    """One path for a frame: PoseEstimator.infer is an InferenceWorker's process()."""
    image = _images(1)[0]
    out = estimator.workers(1)[0].process(image)
    assert isinstance(out, Processed) and min(out.preprocess_ms, out.infer_ms, out.group_ms) >= 0
    np.testing.assert_array_equal(estimator.infer(image).keypoints, out.poses.keypoints)
    with pytest.raises(FrameError, match="H x W x 3"):
        estimator.infer(np.zeros((8, 8), np.uint8))
    assert isinstance(estimator.workers(2)[0], InferenceWorker)
