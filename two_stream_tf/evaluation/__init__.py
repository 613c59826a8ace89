"""The paper's test protocol on a trained stream: `scoring` (the 25 x 10 views of each video,
averaged per video, and accuracies), `score_files` (the file that carries the scores to
fusion), `run` (`evaluate`, what two_stream_tf.evaluate calls)."""

from two_stream_tf.evaluation.run import evaluate
from two_stream_tf.evaluation.run import write_summaries
from two_stream_tf.evaluation.scoring import accuracies
from two_stream_tf.evaluation.scoring import accuracy_report
from two_stream_tf.evaluation.scoring import records_to_score
from two_stream_tf.evaluation.scoring import report_table
from two_stream_tf.evaluation.scoring import score_videos
