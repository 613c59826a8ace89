"""Late fusion of the two streams' softmax scores: (weighted) averaging and the paper's linear
SVM (Crammer & Singer) on the stacked, L2-normalised scores, fitted on the train split's
scores with C chosen by cross-validation on those only.

Every score file says what it holds (`evaluation.score_files.source`): fusion refuses files
of the wrong stream or subset (an SVM fitted on test scores would publish a leaked accuracy)
and files of different splits (`checks`). `methods` holds the algorithms on arrays, `report`
the paper's Table 3 of them, `outputs` the files a fusion writes and reads back, `run` the
fuse run (`fuse`, what two_stream_tf.fuse calls).
"""

from two_stream_tf.fusion.checks import FusionError
from two_stream_tf.fusion.checks import aligned
from two_stream_tf.fusion.checks import check_sources
from two_stream_tf.fusion.methods import DEFAULT_C_GRID
from two_stream_tf.fusion.methods import SvmFusion
from two_stream_tf.fusion.methods import average
from two_stream_tf.fusion.methods import fit_svm
from two_stream_tf.fusion.methods import svm_features
from two_stream_tf.fusion.outputs import ACCURACY_FIGURE
from two_stream_tf.fusion.outputs import is_fusion_output
from two_stream_tf.fusion.outputs import load_svm
from two_stream_tf.fusion.outputs import per_class_figure_path
from two_stream_tf.fusion.outputs import read_report
from two_stream_tf.fusion.outputs import report_path
from two_stream_tf.fusion.outputs import save_svm
from two_stream_tf.fusion.outputs import svm_path
from two_stream_tf.fusion.report import fusion_report
from two_stream_tf.fusion.report import report_table
from two_stream_tf.fusion.run import fuse
