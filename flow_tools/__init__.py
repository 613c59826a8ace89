"""Video -> optical flow -> TFRecords. Never imports two_stream_tf."""
