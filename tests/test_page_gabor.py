"""AppTest for the Gabor page: a visible default filter, large grids, no dead controls."""

import base64
import json

import numpy as np
from streamlit.testing.v1 import AppTest

from cnnviz import gabor
from tests.apptest_util import assert_clean, page

P = "gabor"


def _app() -> AppTest:
    return AppTest.from_file(page("gabor.py"), default_timeout=120)


def _array(z) -> np.ndarray:
    """A plotly trace array: a list, or a typed array {"dtype", "bdata", "shape"}."""
    if isinstance(z, dict):
        shape = tuple(int(n) for n in str(z.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, float)


def _keys(at: AppTest) -> set[str]:
    return {w.key for w in at.select_slider} | {w.key for w in at.selectbox}


def test_default_single_filter_is_a_stripe_patch():
    at = _app().run()
    assert_clean(at)
    freq = at.slider(key=f"{P}.frequency").value
    sigma = at.slider(key=f"{P}.sigma").value
    # A stripe pair at least 6 pixels wide, and a window holding two or more of them.
    assert 1 / freq >= 6 and 2 * 3 * sigma * freq >= 2
    # The kernel drawn is scikit-image's for those numbers: alternating bands across θ.
    kernel = gabor.gabor_kernel(freq, at.slider(key=f"{P}.theta").value, sigma=sigma).real
    centre = kernel[:, kernel.shape[1] // 2]  # θ ≈ 90°: horizontal stripes, vary along y
    signs = np.sign(centre[np.abs(centre) > 0.2 * np.abs(centre).max()])
    assert np.count_nonzero(np.diff(signs)) >= 2  # + − + at least: stripes, not a blob
    fig = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert np.allclose(_array(fig["data"][0]["z"]), kernel, atol=1e-6)


def test_dataset_tab_hides_the_picker_and_working_size():
    at = _app().run()
    assert {f"{P}.side", f"{P}.sample"} <= _keys(at)
    at.session_state[f"{P}.view"] = "On a dataset"
    at.run()
    assert_clean(at)
    assert not {f"{P}.side", f"{P}.sample"} & _keys(at)
    assert at.radio(key=f"{P}.dataset").value == "digits"


def test_bank_responses_can_be_shown_fewer_and_larger():
    at = _app()
    at.session_state[f"{P}.view"] = "A bank of filters"
    at.run()
    assert_clean(at)

    def height() -> int:
        charts = [c for c in at.get("plotly_chart") if c.proto.id and "fig_bank_r" in c.proto.id]
        return json.loads(charts[0].proto.spec)["layout"]["height"]

    before = height()
    at.select_slider(key=f"{P}.fig_bank_r.cols").set_value(4).run()
    assert_clean(at)
    # 32 maps at 4 per row instead of 8: twice the rows, each cell twice as tall.
    assert height() > 3 * before
