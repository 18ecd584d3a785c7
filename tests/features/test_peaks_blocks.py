"""True peak and saturated spans measured a block at a time equal the one-pass values."""

import numpy as np

from sat_mir.features import peaks


def test_true_peak_and_saturation_in_blocks_equal_one_pass(monkeypatch):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 50000)) * 0.3).astype(np.float32)
    x[:, 20000:20300] = np.clip(x[:, 20000:20300] * 8, -1, 1)  # a clipped span across a block edge
    whole = (peaks.true_peak(x, 44100), peaks.saturated_spans(x, 44100, threshold=0.99))
    assert whole[0] > float(np.abs(x).max())  # an inter-sample peak above the sample peak
    assert whole[1][1] >= 1
    for block in (997, 4096, 20100):
        monkeypatch.setattr(peaks, "_BLOCK", block)
        assert (peaks.true_peak(x, 44100), peaks.saturated_spans(x, 44100, threshold=0.99)) == whole
