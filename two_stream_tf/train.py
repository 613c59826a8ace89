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

from flow_tools.common import interrupts
from flow_tools.common import locks
from two_stream_tf import data
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf import streams
from two_stream_tf import training
from two_stream_tf.data import config as data_config
from two_stream_tf.data import stacking
from two_stream_tf.models import cnn_m
from two_stream_tf.training import strategy as strategy_lib

EXIT_DIVERGED = 4

_INPUT = data.InputConfig()
_AUGMENTATION = data.Augmentation()
_SOURCE = data.InputSource()
_TRAIN = training.TrainConfig()
_SCHEDULE = training.Schedule()
# Leaf fields of the run's config tree (`training.RunConfig`) whose flag has another name;
# every other leaf field has the flag of its name.
FLAG_OF_FIELD = {"boundaries": "lr_boundaries", "decay": "lr_decay"}
# Flags of this app that are no part of the run's config tree.
APP_FLAGS = ("model_dir", "distribution", "checkpoint")

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
flags.DEFINE_enum("trunk", "cnn_m_2048", sorted(models.TRUNKS), "Network body.")
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
                  "on RGB, docs/networks_and_training.md: Models).")

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
flags.DEFINE_integer("shuffle_buffer", _SOURCE.shuffle_buffer, "Samples mixed after their choice.",
                     lower_bound=1)
flags.DEFINE_bool("deterministic_input", _SOURCE.deterministic_input,
                  "Reproducible input order (slower).")
flags.DEFINE_enum("input_cache", _SOURCE.input_cache, list(streams.INPUT_CACHES),
                  "Where samples' steps are read from: memory (the selected records read into "
                  "memory once, by each process or tf.data service worker), disk (through each "
                  "file's index), or auto: memory when they take at most half the available "
                  "memory. The batches are the same.")
flags.DEFINE_string("tf_data_service", None,
                    "grpc://HOST:PORT of a tf.data service dispatcher: its workers read, decode "
                    "and augment the input (each with its own random stream).")

# Optimisation (training.TrainConfig; the schedule from training.paper_schedule).
flags.DEFINE_integer("batch_size", _TRAIN.batch_size, "Global batch size.", lower_bound=1)
flags.DEFINE_float("learning_rate", _SCHEDULE.learning_rate, "Initial learning rate.",
                   lower_bound=0)
flags.DEFINE_list("lr_boundaries", None,
                  "Steps at which the rate is multiplied by --lr_decay (default: 50000,70000 "
                  "from scratch; 14000 fine-tuning).")
flags.DEFINE_float("lr_decay", _SCHEDULE.decay,
                   "Factor the rate is multiplied by at each of --lr_boundaries (the paper's 0.1).")
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


def _schedule(values, model):
  boundaries = values["lr_boundaries"]
  if boundaries is not None:
    try:
      boundaries = [int(b) for b in boundaries]
    except ValueError as e:
      raise ValueError(f"--lr_boundaries must be integers, got {boundaries}") from e
  return training.paper_schedule(model.pretrained, values["learning_rate"], boundaries,
                                 values["train_steps"], values["lr_decay"])


def _tree(config_type, values, **given):
  """`config_type` from the flags of its leaf fields (nested configs alike; `given` first)."""
  fields = {}
  for field in dataclasses.fields(config_type):
    if field.name in given:
      fields[field.name] = given[field.name]
    elif dataclasses.is_dataclass(field.type):
      fields[field.name] = _tree(field.type, values)
    else:
      fields[field.name] = values[FLAG_OF_FIELD.get(field.name, field.name)]
  return config_type(**fields)


def run_config(values):
  """The `training.RunConfig` of flag values ({flag name: value}); ValueError if invalid."""
  model = _tree(models.ModelConfig, values)
  train = _tree(training.TrainConfig, values, schedule=_schedule(values, model))
  return _tree(training.RunConfig, values, model=model, train=train)


def as_flags(error):
  """An error of the config tree, its `field` names given as the flags."""
  return re.sub(r"`(\w+)`", lambda m: "--" + FLAG_OF_FIELD.get(m.group(1), m.group(1)),
                str(error))


def checked_run(values):
  """The `training.RunConfig` of flag values, every file it reads checked (`run_spec`).

  Raises:
    ValueError, FileNotFoundError: one line naming the flag at fault.
  """
  try:
    run = run_config(values)
    if values["distribution"] == "multi_worker" and "TF_CONFIG" not in os.environ:
      raise ValueError("`distribution`=multi_worker needs the TF_CONFIG environment variable "
                       "(cluster and task of this worker)")
    training.run_spec(run)
  except (ValueError, FileNotFoundError) as e:
    raise type(e)(as_flags(e)) from e
  return run


def flag_values():
  """{flag name: value} of this app's flags."""
  return {f.name: f.value for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])}


def _effective_flags(start_note):
  """This app's flags as a flagfile (one per line), with a header saying when and what."""
  lines = [f"# {start_note}, {datetime.datetime.now().isoformat(timespec='seconds')}"]
  lines += [f.serialize() for f in FLAGS.get_key_flags_for_module(sys.modules[__name__])
            if f.value is not None]
  return "\n".join(lines) + "\n"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # TensorFlow's per-save INFO lines drown progress
  data.configure_input_process()

  def kept():
    newest = model_dirs.newest_checkpoint(FLAGS.model_dir)
    return (f"the checkpoints in {model_dirs.checkpoints_dir(FLAGS.model_dir)} are kept "
            f"({'newest: ' + newest if newest else 'none written yet'}); run the same "
            "command again to resume")
  try:
    # Before any work; no TensorFlow op runs here, so the strategy can still be made after.
    run = checked_run(flag_values())
  except (ValueError, FileNotFoundError) as e:
    sys.exit(f"error: {e}")
  try:
    with interrupts.one_line_on_interrupt(kept):
      # First: a multi-worker strategy must exist before any other TensorFlow op runs.
      strategy = training.make_strategy(FLAGS.distribution)
      heads = [head for head, _ in training.run_spec(run).heads]
      result = training.train_stream(
          FLAGS.model_dir, run, strategy=strategy, checkpoint=FLAGS.checkpoint,
          flags_text=_effective_flags(f"python -m two_stream_tf.train, {FLAGS.stream} on "
                                      f"{heads}"))
  except training.TrainingDiverged as e:
    from_caffe_start = (FLAGS.trunk == "cnn_m_2048" and FLAGS.initialization == "caffe"
                        and FLAGS.weights is None and FLAGS.init_from is None)
    hint = (", or --initialization=keras (the paper's Caffe start diverges at lr 1e-2)"
            if from_caffe_start else "")
    print(f"error: training diverged: {e}{hint}", file=sys.stderr)
    sys.exit(EXIT_DIVERGED)
  except (ValueError, FileNotFoundError, locks.LockedError) as e:
    sys.exit(f"error: {as_flags(e)}")
  print(f"trained to step {result.step} (from {result.start_step}) in {result.seconds:.0f} s; "
        f"checkpoint {result.checkpoint}")


if __name__ == "__main__":
  app.run(main)
