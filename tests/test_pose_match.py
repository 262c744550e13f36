"""The yardstick of the benchmarks and the demo: people recovered, and PCK."""
import numpy as np

from openpose_plus.edge.synthetic.recovery import Recovery, recovery


def person(x, visible=18):
    kp = np.zeros((18, 3), np.float32)
    kp[:, 0] = x + np.arange(18)
    kp[:, 1] = 10 + np.arange(18)
    kp[:visible, 2] = 2
    return kp


def test_recovery_counts_people_and_parts():
    truth = np.stack([person(0), person(100), person(200, visible=2)])  # the last has too few parts
    good = person(0) + np.float32([0.5, 0.5, 0])                      # every part within 1.5
    half = person(100)
    half[9:, :2] += 5                                                   # 9 of 18 parts off
    r = recovery(np.stack([half, good]), truth, radius=1.5)
    assert (r.true_people, r.predicted_people, r.recovered) == (2, 2, 1)  # half is under 75 %
    assert (r.true_parts, r.parts_hit) == (36, 18 + 9) and abs(r.pck - 27 / 36) < 1e-9
    assert abs(r.rate - 0.5) < 1e-9 and r.returned_per_true == 1.0


def test_a_prediction_is_used_once_and_empty_sides_are_fine():
    truth = np.stack([person(0), person(1)])
    r = recovery(person(0)[None], truth, radius=0.5)
    assert r.recovered == 1 and r.parts_hit == 18 and r.true_parts == 36
    none = recovery(np.zeros((0, 18, 3), np.float32), truth)
    assert (none.recovered, none.parts_hit, none.true_parts, none.pck) == (0, 0, 36, 0.0)
    assert recovery(person(0)[None], np.zeros((0, 18, 3), np.float32)).rate == 1.0


def test_recoveries_add_up():
    a, b = Recovery(2, 3, 1, 30, 20), Recovery(1, 1, 1, 18, 18)
    assert a + b == Recovery(3, 4, 2, 48, 38)
