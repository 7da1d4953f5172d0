"""The human-readable output of a run: one self-contained HTML page built from the run directory.

`lmdelta.report.render.render_report(run_dir)` writes RUN_DIR/report.html.
"""
