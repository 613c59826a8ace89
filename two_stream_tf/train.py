"""Trains one stream (spatial or temporal) of the two-stream network.

  python -m two_stream_tf.train --flagfile=experiments/<config>.flags [--flag=value ...]

Flags after --flagfile override it. Run the same command again after an interruption
(even kill -9): training resumes from the last checkpoint in --model_dir with its step
count, optimizer state and learning-rate schedule. Watch it with
`tensorboard --logdir=<model_dir>`. Exit status 1 on bad flags or a failed run, 4 when
the loss diverged (the last good checkpoint is kept).
"""

import dataclasses
import datetime
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging

from flow_tools import records
from flow_tools.common import interrupts
from flow_tools.common import locks
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf import streams
from two_stream_tf import training
from two_stream_tf.data import added_classes
from two_stream_tf.data import config as data_config
from two_stream_tf.data import stacking
from two_stream_tf.models import builder
from two_stream_tf.models import cnn_m
from two_stream_tf.training import schedule
from two_stream_tf.training import strategy as strategy_lib

EXIT_DIVERGED = 4

_INPUT = data.InputConfig()
_AUGMENTATION = data.Augmentation()
_TRAIN = training.TrainConfig()

# What is trained: data and network.
flags.DEFINE_enum("stream", None, list(streams.STREAMS), "Which stream to train.")
flags.DEFINE_list("records_dirs", None,
                  "Records directories from flow_tools.extract, one per dataset; several "
                  "train one multi-task network with a head per dataset (in this order).")
flags.DEFINE_string("add_classes_from", None,
                    "Records of another dataset whose classes the one --records_dirs dataset "
                    "lacks are added to its head as extra training classes (Table 2: HMDB-51 "
                    "with the 78 UCF-101 classes it lacks); tests score its own classes only.")
flags.DEFINE_string("overlapping_classes", None,
                    "File listing the --add_classes_from classes that are not added (one per "
                    "line; the dataset has them). Default: the shipped UCF-101-in-HMDB-51 "
                    "list, two_stream_tf/data/class_lists/ucf101_in_hmdb51.txt.")
flags.DEFINE_integer("split", 1, "Split whose training videos are used.", lower_bound=1)
flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs, run spec and flags.")
flags.DEFINE_enum("trunk", "cnn_m_2048", sorted(builder.TRUNKS), "Network body.")
flags.DEFINE_string("weights", None,
                    "Pre-trained trunk: 'imagenet' (keras.applications trunks) or a local "
                    "weights file (.npz/.weights.h5). Temporal trunks get them by "
                    "cross-modality initialisation. Selects the fine-tuning schedule.")
flags.DEFINE_string("init_from", None,
                    "A model_dir whose trained trunk initialises this one (e.g. HMDB-51 "
                    "fine-tuned from UCF-101). Selects the fine-tuning schedule.")
flags.DEFINE_bool("last_layer_only", False, "Train the heads only (needs --weights/--init_from).")
flags.DEFINE_float("dropout", None, "Dropout rate before the heads (CNN-M-2048: after full6 "
                   "and full7, as the paper). Default: the paper's 0.5 spatial, 0.9 temporal "
                   "(TSN: 0.8, 0.7).")
flags.DEFINE_bool("partial_bn", False,
                  "TSN's partial batch normalisation: every batch-norm layer of a "
                  "keras.applications trunk but the first keeps its pre-trained mean and "
                  "variance in training (gamma and beta train). Needs --weights or --init_from.")
flags.DEFINE_enum("initialization", cnn_m.DEFAULT_INITIALIZATION, list(cnn_m.INITIALIZATIONS),
                  "How a CNN-M-2048 from scratch starts: keras (Glorot uniform, zero biases) or "
                  "caffe (the paper's: Gaussian std 0.01, 0.005 for full6/full7, biases 1 for "
                  "conv2/4/5 and full6/7; at lr 1e-2 it diverges on flow and stays at chance "
                  "on RGB, README: Models).")

# What the network sees (data.InputConfig; kept in the run spec).
flags.DEFINE_integer("crop_size", _INPUT.crop_size, "Input crop side.", lower_bound=1)
flags.DEFINE_enum("stacking", _INPUT.stacking, list(stacking.STACKINGS),
                  "Temporal input: flow stacking, trajectory stacking or bi-directional.")
flags.DEFINE_integer("stack_length", _INPUT.stack_length, "L: flow fields per stack.",
                     lower_bound=1)
flags.DEFINE_bool("mean_subtraction", _INPUT.mean_subtraction, "Subtract each field's mean flow.")

# How training samples vary (data.Augmentation) and how they are read.
flags.DEFINE_bool("flip", _AUGMENTATION.flip, "Random horizontal flips (x-flow negated).")
flags.DEFINE_bool("rgb_jitter", _AUGMENTATION.rgb_jitter, "PCA colour jitter of RGB frames.")
flags.DEFINE_enum("sampling", _AUGMENTATION.sampling, list(data_config.SAMPLINGS),
                  "balanced: videos uniform across classes (the paper); shuffle: plain.")
flags.DEFINE_integer("samples_per_visit", _AUGMENTATION.samples_per_visit,
                     "Samples drawn per video read (1: the paper).", lower_bound=1)
flags.DEFINE_integer("num_segments", _AUGMENTATION.num_segments,
                     "K: TSN's temporal segments. 1 (the paper): a sample is one frame or "
                     "stack. K > 1: a sample is K snippets of a video, one from each of K "
                     "equal segments, and the loss sees the mean of their logits. "
                     "--batch_size counts videos: a step puts K x batch snippets through the "
                     "network, K times the activation memory and compute (TSN: K=3).",
                     lower_bound=1)
flags.DEFINE_integer("shuffle_buffer", 1024, "Samples mixed after their choice.", lower_bound=1)
flags.DEFINE_bool("deterministic_input", False, "Reproducible input order (slower).")
flags.DEFINE_enum("input_cache", "auto", list(streams.INPUT_CACHES),
                  "Where samples' steps are read from: memory (the selected records read into "
                  "memory once, by each process or tf.data service worker), disk (through each "
                  "file's index), or auto: memory when they take at most half the available "
                  "memory. The batches are the same.")
flags.DEFINE_string("tf_data_service", None,
                    "grpc://HOST:PORT of a tf.data service dispatcher: its workers read, decode "
                    "and augment the input (each with its own random stream).")

# Optimisation (training.TrainConfig; the schedule from training.paper_schedule).
flags.DEFINE_integer("batch_size", _TRAIN.batch_size, "Global batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", 1e-2, "Initial learning rate.", lower_bound=0)
flags.DEFINE_list("lr_boundaries", None,
                  "Steps at which the rate is divided by 10 (default: 50000,70000 from "
                  "scratch; 14000 fine-tuning).")
flags.DEFINE_integer("train_steps", None, "Last step (default: 80000 from scratch; 20000 "
                     "fine-tuning).", lower_bound=1)
flags.DEFINE_float("momentum", _TRAIN.momentum, "SGD momentum.", lower_bound=0)
flags.DEFINE_float("weight_decay", _TRAIN.weight_decay, "L2 weight decay of kernels.",
                   lower_bound=0)
flags.DEFINE_float("bias_lr_multiplier", _TRAIN.bias_lr_multiplier,
                   "Biases learn at this times --learning_rate (Caffe's reference nets of the "
                   "paper's era: 2). Biases are never weight-decayed.", lower_bound=0)
flags.DEFINE_float("clip_global_norm", _TRAIN.clip_global_norm,
                   "Scale each step's gradient down to at most this global norm (tsn-pytorch "
                   "--gd 20). Default: no clipping.", lower_bound=0)
flags.DEFINE_integer("seed", _TRAIN.seed, "Seeds initialisation and input sampling.")
flags.DEFINE_bool("mixed_precision", _TRAIN.mixed_precision,
                  "mixed_float16 compute (GPUs), loss scaling.")
flags.DEFINE_bool("jit_compile", _TRAIN.jit_compile, "XLA-compile the forward and backward pass.")
flags.DEFINE_float("max_loss", _TRAIN.max_loss, "A loss above this (or NaN) stops the run.")

# Distribution, logging and checkpoints.
flags.DEFINE_enum("distribution", "none", list(strategy_lib.DISTRIBUTIONS),
                  "none; mirrored (all local GPUs); multi_worker (cluster from TF_CONFIG).")
flags.DEFINE_integer("log_every", _TRAIN.log_every, "Steps between console/TensorBoard logs.",
                     lower_bound=1)
flags.DEFINE_integer("checkpoint_every", _TRAIN.checkpoint_every, "Steps between checkpoints.",
                     lower_bound=1)
flags.DEFINE_integer("keep_checkpoints", _TRAIN.keep_checkpoints, "Checkpoints kept.",
                     lower_bound=1)
flags.DEFINE_string("checkpoint", None, "Resume from this checkpoint prefix, e.g. "
                    "MODEL_DIR/checkpoints/ckpt-2000 (default: the newest readable one of "
                    "--model_dir).")
flags.mark_flags_as_required(["stream", "records_dirs", "model_dir"])

FLAGS = flags.FLAGS


def _fine_tuning(values):
  return values["weights"] is not None or values["init_from"] is not None


def _check_input(values):
  try:
    data.InputConfig(stream=values["stream"] or "temporal", stacking=values["stacking"],
                     stack_length=values["stack_length"])
    builder.check_crop_size(values["trunk"], values["crop_size"])
  except ValueError as e:
    raise flags.ValidationError(str(e)) from e
  return True


def _check_records(values):
  for path in values["records_dirs"] or []:
    try:
      records.read_manifest(path)  # local or gs://; refuses other format versions
    except records.RecordsError as e:
      raise flags.ValidationError(f"--records_dirs: {e}") from e
  return True


def _added_classes(values):
  """The `AddedClasses` the flags ask for (empty: none)."""
  if values["add_classes_from"] is None:
    if values["overlapping_classes"] is not None:
      raise ValueError("--overlapping_classes needs --add_classes_from")
    return ()
  if len(values["records_dirs"] or []) != 1:
    raise ValueError("--add_classes_from adds classes to the head of one --records_dirs "
                     f"dataset, got {len(values['records_dirs'] or [])} directories")
  return (added_classes.non_overlapping(values["records_dirs"][0], values["add_classes_from"],
                                        values["overlapping_classes"]),)


def _check_added_classes(values):
  try:
    _added_classes(values)
  except (ValueError, FileNotFoundError) as e:
    raise flags.ValidationError(str(e)) from e
  return True


def _check_weights(values):
  weights, trunk = values["weights"], values["trunk"]
  if weights is not None and weights != "imagenet" and not os.path.isfile(weights):
    raise flags.ValidationError(f"--weights: no file {weights}")
  if weights == "imagenet" and trunk == "cnn_m_2048":
    raise flags.ValidationError("--weights=imagenet: CNN-M-2048 has no download; give its "
                                "converted weights file (.npz or .weights.h5)")
  if weights is not None and values["init_from"] is not None:
    raise flags.ValidationError("give --weights or --init_from, not both")
  if values["init_from"] is not None and not os.path.isfile(
      os.path.join(values["init_from"], model_dirs.SPEC_FILE)):
    raise flags.ValidationError(f"--init_from: {values['init_from']} is not a trained model_dir")
  if values["last_layer_only"] and not _fine_tuning(values):
    raise flags.ValidationError("--last_layer_only needs --weights or --init_from: a frozen "
                                "random trunk learns nothing")
  if values["partial_bn"] and trunk == "cnn_m_2048":
    raise flags.ValidationError("--partial_bn: cnn_m_2048 has no batch normalisation (the "
                                "keras.applications trunks have)")
  if values["partial_bn"] and not _fine_tuning(values):
    raise flags.ValidationError("--partial_bn keeps pre-trained batch statistics: it needs "
                                "--weights or --init_from")
  return True


def _check_schedule(values):
  try:
    _schedule(values)
  except ValueError as e:
    raise flags.ValidationError(str(e)) from e
  return True


def _check_distribution(values):
  if values["distribution"] == "multi_worker" and "TF_CONFIG" not in os.environ:
    raise flags.ValidationError("--distribution=multi_worker needs the TF_CONFIG environment "
                                "variable (cluster and task of this worker)")
  return True


def _check_service(values):
  address = values["tf_data_service"]
  if address is None:
    return True
  if not re.fullmatch(r"grpc://[^\s/]+:\d+", address):
    raise flags.ValidationError(f"--tf_data_service must look like grpc://HOST:PORT, "
                                f"got {address!r}")
  if values["deterministic_input"]:
    raise flags.ValidationError("--deterministic_input cannot hold with --tf_data_service "
                                "(batches arrive from several workers in any order)")
  return True


def _schedule(values):
  boundaries = values["lr_boundaries"]
  if boundaries is not None:
    try:
      boundaries = [int(b) for b in boundaries]
    except ValueError as e:
      raise ValueError(f"--lr_boundaries must be integers, got {boundaries}") from e
  return schedule.paper_schedule(_fine_tuning(values), values["learning_rate"], boundaries,
                                 values["train_steps"])


for _names, _check in ((["stream", "stacking", "stack_length", "trunk", "crop_size"],
                        _check_input),
                       (["records_dirs"], _check_records),
                       (["records_dirs", "add_classes_from", "overlapping_classes"],
                        _check_added_classes),
                       (["weights", "trunk", "init_from", "last_layer_only", "partial_bn"],
                        _check_weights),
                       (["lr_boundaries", "learning_rate", "train_steps", "weights", "init_from"],
                        _check_schedule),
                       (["distribution"], _check_distribution),
                       (["tf_data_service", "deterministic_input"], _check_service)):
  flags.register_multi_flags_validator(_names, _check)


def _flag_values():
  return {f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])}


def _effective_flags(start_note):
  """This app's flags as a flagfile (one per line), with a header saying when and what."""
  lines = [f"# {start_note}, {datetime.datetime.now().isoformat(timespec='seconds')}"]
  lines += [f.serialize() for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])
            if f.value is not None]
  return "\n".join(lines) + "\n"


def _fields(dataclass, **values):
  """`dataclass` from the flags named as its fields (`values` override)."""
  return dataclass(**{f.name: values[f.name] if f.name in values else FLAGS[f.name].value
                      for f in dataclasses.fields(dataclass)})


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines drown progress
  data.configure_input_process()
  values = _flag_values()

  def kept():
    newest = model_dirs.newest_checkpoint(FLAGS.model_dir)
    return (f"the checkpoints in {model_dirs.checkpoints_dir(FLAGS.model_dir)} are kept "
            f"({'newest: ' + newest if newest else 'none written yet'}); run the same "
            "command again to resume")
  try:
    with interrupts.one_line_on_interrupt(kept):
      # First: a multi-worker strategy must exist before any other TensorFlow op runs.
      strategy = training.make_strategy(FLAGS.distribution)
      spatial_cnn_m = FLAGS.stream == "spatial" and FLAGS.trunk == "cnn_m_2048"
      spec = model_dirs.RunSpec.of_records(
          FLAGS.records_dirs, FLAGS.split, _fields(data.InputConfig),
          added_classes=_added_classes(values), trunk=FLAGS.trunk,
          dropout=FLAGS.dropout,
          rgb_mean=models.cnn_m_mean(FLAGS.weights) if spatial_cnn_m else None)
      result = training.train_stream(
          FLAGS.model_dir, spec, _fields(training.TrainConfig, schedule=_schedule(values)),
          augmentation=_fields(data.Augmentation), weights=FLAGS.weights,
          init_from=FLAGS.init_from, last_layer_only=FLAGS.last_layer_only,
          shuffle_buffer=FLAGS.shuffle_buffer, deterministic_input=FLAGS.deterministic_input,
          input_cache=FLAGS.input_cache,
          tf_data_service=FLAGS.tf_data_service,
          strategy=strategy, hparams=values, checkpoint=FLAGS.checkpoint,
          initialization=FLAGS.initialization, partial_bn=FLAGS.partial_bn,
          flags_text=_effective_flags(f"python -m two_stream_tf.train, {FLAGS.stream} on "
                                      f"{spec.head_names}"))
  except training.TrainingDiverged as e:
    from_caffe_start = (FLAGS.trunk == "cnn_m_2048" and FLAGS.initialization == "caffe"
                        and FLAGS.weights is None and FLAGS.init_from is None)
    hint = (", or --initialization=keras (the paper's Caffe start diverges at lr 1e-2)"
            if from_caffe_start else "")
    print(f"error: training diverged: {e}{hint}", file=sys.stderr)
    sys.exit(EXIT_DIVERGED)
  except (ValueError, FileNotFoundError, locks.LockedError) as e:
    sys.exit(f"error: {e}")
  print(f"trained to step {result.step} (from {result.start_step}) in {result.seconds:.0f} s; "
        f"checkpoint {result.checkpoint}")


if __name__ == "__main__":
  app.run(main)
