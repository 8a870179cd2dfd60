"""Home: what each lesson teaches."""

import streamlit as st

from cnnviz.ui.router import use_app_router

use_app_router()

st.title("cnnviz: see how a convolutional network works")
st.markdown(
    """
A lab for lectures and for students' own images. Every number you see is computed live,
and every picture has a download button.

**Convolution**
- **Kernels**: slide a small matrix over any image. Blur, sharpen and edge detectors, with
  padding, stride and dilation, and the output-size formula filled in with your numbers.
- **Gabor filters**: oriented wave detectors, one at a time or as a bank, the filters a CNN's
  first layer ends up learning.
- **Step by step**: convolution and pooling one window at a time, with the arithmetic of every
  step written out, exactly as Keras computes it.

**Inside a CNN**
- **Architecture**: layers, shapes, parameter counts and receptive fields.
- **Activations**: what every layer sees in your image.
- **Filters**: the images each filter wants most, found by gradient ascent.
- **Grad-CAM**: where the network looked, and the sanity checks that show when an
  explanation lies.

**Train**: train a small CNN live and compare experiments.

Pick a lesson on the left. The sidebar's *Projector mode* makes text large for a classroom.
"""
)
