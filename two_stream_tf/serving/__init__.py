"""Serving a trained model: `exporting` (one SavedModel per stream, and the two-stream one with
fusion inside), `export_metadata` (what an export says about itself: its one owner),
`prediction` (an export run on video files)."""
