"""Two-stream ConvNets for action recognition: data pipelines, models, training, fusion.

Names tell apps from libraries: a module named by a verb is an app (`python -m
two_stream_tf.<verb>`: train, evaluate, fuse, export, predict, run_pipeline); it defines
the absl flags, reads them and calls one function of the library named by the noun
(training, evaluation, fusion, serving.exporting, serving.prediction, pipeline). Everything
else is a library named by what it holds (model_dirs, streams, data, models, reporting) and
takes plain arguments, so it works from Python and in tests.
"""
