"""Videos into records: the job, its two runners (local processes, Apache Beam), the output
directory they fill, and the per-video work (decode, flow, quantise, JPEG)."""
