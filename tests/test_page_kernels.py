"""AppTest for the Kernels page: it loads, every control reruns cleanly, numbers match."""

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnviz import conv, images, kernels
from tests.apptest_util import assert_clean, imports_tensorflow, page

P = "kernels"


@pytest.fixture
def at():
    app = AppTest.from_file(page("kernels.py"), default_timeout=120)
    app.run()
    assert_clean(app)
    return app


def test_loads_with_meaningful_defaults(at):
    assert at.selectbox(key=f"{P}.preset").value == "sobel x"
    assert at.radio(key=f"{P}.display").value == "signed"  # Sobel sums to 0
    assert "512" in at.code[0].value  # the formula with the camera's size filled in
    assert len(at.get("image")) >= 2
    assert len(at.get("download_button")) == 3


def test_every_control_reruns_without_exception(at):
    steps = [
        lambda a: a.selectbox(key=f"{P}.sample").set_value("astronaut"),
        lambda a: a.radio(key=f"{P}.colour").set_value("Per channel (RGB)"),
        lambda a: a.selectbox(key=f"{P}.preset").set_value("gaussian 9×9 σ=3 (seed 001)"),
        lambda a: a.selectbox(key=f"{P}.padding").set_value("full"),
        lambda a: a.selectbox(key=f"{P}.padding").set_value("custom"),
        lambda a: a.number_input(key=f"{P}.pad_amount").set_value(5),
        lambda a: a.selectbox(key=f"{P}.pad_mode").set_value("reflect"),
        lambda a: a.selectbox(key=f"{P}.pad_mode").set_value("wrap"),
        lambda a: a.slider(key=f"{P}.stride").set_value(3),
        lambda a: a.slider(key=f"{P}.dilation").set_value(2),
        lambda a: a.toggle(key=f"{P}.flip").set_value(True),
        lambda a: a.radio(key=f"{P}.display").set_value("absolute"),
        lambda a: a.radio(key=f"{P}.display").set_value("clip"),
        lambda a: a.radio(key=f"{P}.kernel_source").set_value("Edit grid"),
        lambda a: a.number_input(key=f"{P}.rows").set_value(5),
        lambda a: a.number_input(key=f"{P}.cols").set_value(2),
        lambda a: a.radio(key=f"{P}.kernel_source").set_value("Type text"),
    ]
    for step in steps:
        step(at).run()
        assert_clean(at)
    assert not at.error


def test_formula_follows_the_controls(at):
    at.selectbox(key=f"{P}.padding").set_value("valid").run()
    at.slider(key=f"{P}.stride").set_value(2).run()
    code = at.code[0].value
    size, formula = conv.output_size(512, 3, 2, "valid")
    assert formula in code and size == 255


def test_typed_kernel_is_used_and_junk_is_explained(at):
    at.radio(key=f"{P}.kernel_source").set_value("Type text").run()
    area = at.text_area[0]
    area.set_value("0 0 0; 0 2 0; 0 0 0").run()
    assert_clean(at)
    assert "sum = 2" in " ".join(c.value for c in at.caption)
    at.text_area[0].set_value("__import__('os').system('echo pwned')").run()
    assert_clean(at)
    assert at.error and "not a number" in at.error[0].value
    at.text_area[0].set_value("1 2; 3").run()
    assert at.error and "same number" in at.error[0].value


def test_constant_image_never_gives_nan():
    flat = np.full((40, 40, 3), 90, np.uint8)
    out = conv.conv2d(
        images.to_gray(flat), kernels.preset("laplacian"), padding="same", pad_mode="edge"
    )
    assert np.all(out == 0)


def test_upload_good_and_bad_images(at):
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    at.file_uploader(key=f"{P}.upload").upload("red.png", buf.getvalue(), "image/png").run()
    assert_clean(at)
    assert "64" in at.code[0].value or "48" in at.code[0].value
    at.file_uploader(key=f"{P}.upload").clear().upload(
        "evil.png", b"<?php system($_GET['c']); ?>", "image/png"
    ).run()
    assert_clean(at)
    assert at.error and "not an image we can read" in at.error[0].value
    assert "512" in at.code[0].value  # fell back to the sample image


def test_kernels_page_imports_no_tensorflow():
    assert not imports_tensorflow("kernels.py")


def test_larger_pictures_stack_input_above_output(at):
    # Side by side: the input and output pictures sit in two columns of the right panel.
    assert len(at.columns) >= 4
    side_by_side = len(at.columns)
    at.toggle(key=f"{P}.stacked").set_value(True).run()
    assert_clean(at)
    # Stacked: the same two pictures, without the two picture columns.
    assert len(at.columns) == side_by_side - 2
    assert len(at.get("image")) >= 2
