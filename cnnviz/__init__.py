"""cnnviz: a lab for seeing how convolutional neural networks work.

The core modules (images, kernels, conv, figures, ...) depend on numpy, scipy, scikit-image,
pillow, plotly and, where a model is involved, keras. They never import streamlit, so a
notebook can use them directly; the Streamlit glue lives in `cnnviz.ui`.
"""

__version__ = "0.1.0"
