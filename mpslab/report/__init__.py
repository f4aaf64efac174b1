"""The report layer: figures, reader tables and the papermill pipeline.

Lives here: every figure (one function each, saved through ``save_figure``), the tables for
readers (``reader``), and the headless execution of the notebook series with its index.
May import every layer below; nothing below imports it.
"""
