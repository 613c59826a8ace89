"""The evaluate run: a model_dir's stream scored (`scoring`), its score file (`score_files`),
JSON report and TensorBoard summaries written, with the output checked before the work."""

import os

import tensorflow as tf

from flow_tools import records
from flow_tools.common import storage
from two_stream_tf import model_dirs
from two_stream_tf import streams
from two_stream_tf.evaluation import score_files
from two_stream_tf.evaluation import scoring
from two_stream_tf.reporting import figures
from two_stream_tf.reporting import summaries


def write_summaries(log_dir, head_scores, report, step, stream, sample_views):
  """TensorBoard: accuracies, a confusion matrix per head, sample input views."""
  with tf.summary.create_file_writer(log_dir).as_default():
    for head, s in head_scores.items():
      tf.summary.scalar(f"accuracy/{head}", report[head]["accuracy"], step=step)
      tf.summary.scalar(f"mean_class_accuracy/{head}", report[head]["mean_class_accuracy"],
                        step=step)
      matrix = summaries.confusion_matrix(s.labels, s.predictions, len(s.class_names))
      title = (f"{stream} {head}, step {step}\naccuracy {100 * report[head]['accuracy']:.1f}% "
               f"of {report[head]['videos']} videos")
      summaries.write_figure(
          f"confusion_matrix/{head}", figures.confusion(matrix, s.class_names, title), step,
          "Rows: true classes (videos in brackets); columns: predicted classes. Colour: share "
          "of the row's videos; numbers: video counts.")
    if sample_views is not None:
      summaries.write_inputs("evaluation_views", stream, sample_views, step)


def evaluate(model_dir: str, *, subset: str = "test", checkpoint: str | None = None,
             records_dirs: list[str] | None = None, num_positions: int = streams.NUM_POSITIONS,
             batch_size: int = 50, output: str | None = None, jit_compile: bool = False,
             accept_other_records: bool = False, input_cache: str = "auto") -> dict:
  """Scores the run in `model_dir` on its split's `subset` videos; writes the score file, its
  JSON report beside it and TensorBoard summaries in `model_dir`/eval_<subset>.

  `records_dirs` (default: those trained on) must hold the heads' datasets extracted as the
  training records were, unless `accept_other_records` (`records_to_score`); the score
  file says which records were scored and with what settings, so that fusion can check.
  `input_cache`: as `score_videos`.

  Returns:
    The report (as written to the JSON file) with the score file's path under 'scores'.
  """
  spec = model_dirs.load_spec(model_dir)
  records_dirs = scoring.records_to_score(spec, model_dir, records_dirs, accept_other_records)
  output = output or score_files.path(model_dir, subset, spec.split)
  log_dir = os.path.join(model_dir, f"eval_{subset}")
  # Checked before the views are scored, so that a long evaluation is not lost at its end.
  storage.check_writable(output, directory=False, needed_bytes=_output_bytes(spec, records_dirs))
  storage.check_writable(log_dir)
  model, spec, step = model_dirs.load(model_dir, checkpoint)
  head_scores, sample_views = scoring.score_videos(
      model, spec, subset=subset, batch_size=batch_size, num_positions=num_positions,
      records_dirs=records_dirs, jit_compile=jit_compile, input_cache=input_cache)
  heads = scoring.accuracy_report(head_scores)
  report = {"model_dir": model_dir, "step": step, "stream": spec.stream, "split": spec.split,
            "subset": subset, "views_per_video": num_positions * streams.VIEWS_PER_POSITION,
            "heads": heads}
  try:
    score_files.save(output, head_scores, score_files.source(
        spec, subset, step, model_dir, records_dirs, accept_other_records))
    storage.write_json(os.path.splitext(output)[0] + ".json", report)
  except OSError as e:
    raise storage.write_error(output, e) from e
  write_summaries(log_dir, head_scores, heads, step, spec.stream, sample_views)
  return {**report, "scores": output}


def _output_bytes(spec, records_dirs):
  """About what the score file and its report take, with room to spare."""
  videos = sum(len(records.read_manifest(d)["videos"]) for d in records_dirs)
  classes = max(len(c) for _, c in spec.heads)
  return 2**20 + 2 * videos * (4 * classes + 256)
