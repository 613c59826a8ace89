"""Video -> optical flow -> TFRecords. Never imports two_stream_tf.

Names tell apps from libraries, as in two_stream_tf: the apps are verbs (`python -m
flow_tools.extract`, `python -m flow_tools.synthesize`) and call one library function
(extraction.extract, synthetic.generate); the libraries are nouns (datasets, video, flow,
encoding, quantization, records, storage, ...).
"""
