"""Streamlit glue: the only package in cnnviz that imports streamlit."""
