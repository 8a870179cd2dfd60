"""cnnviz.userinput: users' pictures made like the built-in models' training data.

References are written here (analytic pictures, scipy's centre of mass, skimage's region
properties), never with the code under test.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage import measure

from cnnviz import datasets, userinput
from cnnviz.userinput import BlankPicture, digit_input, drawing_input


def _disc(side: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def _ink_box(img: np.ndarray) -> tuple[int, int]:
    r0, c0, r1, c1 = measure.regionprops((img > 0).astype(int))[0].bbox
    return r1 - r0, c1 - c0


def test_a_centred_disc_stays_centred():
    paper = np.where(_disc(201, 100, 100, 50), 0, 255).astype(np.uint8)
    out = digit_input(paper)
    assert out.shape == (28, 28) and out.dtype == np.float32
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    # Symmetric about the centre, like the disc (up to the half-pixel grid offset).
    assert max(_ink_box(out)) <= 21
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=255 * 0.6)


def test_a_small_digit_in_a_corner_of_a_big_canvas_is_centred_and_fills_the_box():
    canvas = np.full((500, 500, 3), 255, np.uint8)
    # A "1"-like bar with a flag, 60 px high, in the top-left corner, dark ink.
    canvas[12:72, 30:38] = 20
    canvas[12:20, 18:38] = 20
    out = digit_input(canvas)
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    h, w = _ink_box(out)
    assert max(h, w) <= 20 and max(h, w) >= 19
    assert out.max() == 255 and out[0].max() == 0  # white ink, black margin


@settings(max_examples=25, deadline=None)
@given(
    st.integers(40, 300),
    st.integers(40, 300),
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
    st.integers(0, 2**31 - 1),
)
def test_inverting_a_picture_gives_the_same_input(h, w, fy, fx, seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(200, 256, (h, w)).astype(np.uint8)  # grainy paper
    r = max(3, min(h, w) // 8)
    img[_disc(max(h, w), fy * h, fx * w, r)[:h, :w]] = rng.integers(0, 60)
    a = digit_input(img)
    b = digit_input(255 - img)
    np.testing.assert_array_equal(a, b)
    cy, cx = ndimage.center_of_mass(a)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_mnist_form_digits_pass_unchanged_and_others_are_normalised():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a white bar on black: box 16 high, centre of mass (13.5, 13.5)
    np.testing.assert_array_equal(digit_input(digit), digit.astype(np.float32))
    # Real MNIST digits are all in that form already: the model sees them as MNIST made them.
    mnist, _ = datasets.mnist_sample()
    for img in mnist[::250]:
        np.testing.assert_array_equal(digit_input(img), img.astype(np.float32))
    # Dark on light, or off-centre, is normalised: the bar now fills the 20-pixel box.
    paper = digit_input(255 - digit)
    assert _ink_box(paper)[0] == 20 and paper[14, 14] == 255
    shifted = np.roll(digit, 5, axis=1)
    out = digit_input(shifted)
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


@pytest.mark.parametrize(
    "blank", [np.full((60, 60), 255, np.uint8), np.zeros((28, 28, 3), np.uint8)]
)
def test_a_blank_picture_is_refused_with_a_message(blank):
    with pytest.raises(BlankPicture, match="Expected a picture of a digit.*blank"):
        digit_input(blank)
    with pytest.raises(BlankPicture, match="Expected a picture of a drawing.*blank"):
        drawing_input(blank)


def test_faint_noise_alone_is_blank():
    noise = np.random.default_rng(0).integers(120, 140, (100, 100)).astype(np.uint8)
    with pytest.raises(BlankPicture):
        digit_input(noise)


def test_a_small_drawing_on_a_big_canvas_is_cropped_to_fill_the_frame():
    canvas = np.full((400, 600, 3), (250, 245, 240), np.uint8)
    canvas[_disc(600, 300, 450, 40)[:400]] = (10, 20, 200)  # a blue disc, 80 px across
    out = drawing_input(canvas)
    assert out.shape[0] == out.shape[1] and out.shape[2] == 3
    inside = np.abs(out - np.array([250, 245, 240], np.float32)).max(-1) > 50
    ys, xs = np.nonzero(inside)
    extent = max(np.ptp(ys), np.ptp(xs)) + 1
    assert abs(extent / out.shape[0] - userinput._DRAWING_FILL) < 0.03
    cy, cx = ndimage.center_of_mass(inside)
    assert abs(cy - (out.shape[0] - 1) / 2) <= 1 and abs(cx - (out.shape[1] - 1) / 2) <= 1


def test_a_drawing_at_the_edge_is_padded_with_the_background():
    canvas = np.zeros((300, 300), np.uint8)
    canvas[0:30, 0:30] = 255  # a light square touching the corner
    out = drawing_input(canvas)
    assert out.ndim == 2 and out.shape[0] == 50
    assert out[0, 0] == 0 and out[-1, -1] == 0  # padded with the border's colour
    assert out[out.shape[0] // 2, out.shape[1] // 2] == 255
