"""The offline ImageNet message (issue 20): one short sentence and a "Details" expander with
the download error, shown once (in the sidebar, under the picker), not on the page again."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.apptest_util import assert_clean, page
from tests.test_models import offline  # noqa: F401 - the fixture: no network, empty cache

WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"


def test_offline_imagenet_note_is_one_sentence_with_details_once(offline):  # noqa: F811
    at = AppTest.from_file(page("architecture.py"), default_timeout=300)
    at.session_state["model.name"] = "mobilenet_v2"
    at.run()
    assert_clean(at)
    notes = [w.value for w in at.warning if "random weights" in w.value]
    assert len(notes) == 1, notes
    assert notes[0].startswith("**MobileNetV2 has random weights here**")
    assert len(notes[0]) < 200 and WEIGHTS not in notes[0]
    # It is in the sidebar, and nothing on the page repeats the download error.
    assert any("random weights here" in w.value for w in at.sidebar.warning)
    assert not any(WEIGHTS in w.value for w in at.main.warning)
    details = [e for e in at.sidebar.expander if e.label == "Details"]
    assert len(details) == 1
    text = " ".join(c.value for c in details[0].code)
    assert WEIGHTS in text and "could not be downloaded" in text and "cnnviz.prefetch" in text
