"""Videos from TensorFlow Datasets (e.g. `ucf101/ucf101_1`) as an extraction source.

TFDS stores a video as its encoded frames with a class label, but not the name of
the file it came from. So a video's id here is its TFDS id
(`ucf101-train.tfrecord-00003-of-00032__17`), the same on every run over the same
prepared data. Labels and class names are TFDS's. Split membership follows the
config: `ucf101/ucf101_N` holds split N, its `train` and `test` sets are TRAIN and
TEST there; the membership in the other splits is not in that config, so it is
stored as UNUSED and only split N is selectable. Frames travel to the encoding
workers still JPEG-coded (decoded there), so the reading process stays light.
"""

import tensorflow_datasets as tfds

from flow_tools import datasets
from flow_tools.extraction import video

VIDEO_FEATURE, LABEL_FEATURE = "video", "label"


class TfdsVideos:
  """One TFDS video dataset: its `DatasetIndex` and its videos as `EncodedFrames`."""

  def __init__(self, name, data_dir=None, download=True):
    """Opens `name` ("dataset/config"), downloading and preparing it first if `download`.

    Raises:
      flow_tools.datasets.DatasetError: unknown name, not prepared (without
        `download`), or no video and class label features.
    """
    self._name = name
    try:
      self._builder = tfds.builder(name, data_dir=data_dir)
      if download:
        self._builder.download_and_prepare()
    except Exception as error:  # TFDS raises many types; the user needs one line.
      raise datasets.DatasetError(f"tfds {name}: {type(error).__name__}: "
                                  f"{str(error).strip().splitlines()[0]}") from error
    features = dict(self._builder.info.features.items())
    if not (isinstance(features.get(VIDEO_FEATURE), tfds.features.Video)
            and isinstance(features.get(LABEL_FEATURE), tfds.features.ClassLabel)):
      raise datasets.DatasetError(
          f"tfds {name}: needs a '{VIDEO_FEATURE}' Video and a '{LABEL_FEATURE}' ClassLabel "
          f"feature, it has {sorted(features)}")
    config = self._builder.builder_config
    self._split_number = getattr(config, "split_number", 1)

  def _examples(self, subset, with_video):
    """(tfds id, label[, JPEG frames]) of one TFDS split, in its stored order."""
    try:
      dataset = self._builder.as_dataset(
          split=subset, shuffle_files=False,
          decoders={VIDEO_FEATURE: tfds.decode.SkipDecoding()},
          read_config=tfds.ReadConfig(add_tfds_id=True))
    except Exception as error:  # pylint: disable=broad-except
      raise datasets.DatasetError(f"tfds {self._name}: cannot read split '{subset}': "
                                  f"{str(error).strip().splitlines()[0]}") from error
    keys = ("tfds_id", LABEL_FEATURE) + ((VIDEO_FEATURE,) if with_video else ())
    dataset = dataset.map(lambda example: tuple(example[k] for k in keys))
    for values in dataset.as_numpy_iterator():
      yield (values[0].decode("utf-8"),) + tuple(values[1:])

  def index(self):
    """The `DatasetIndex`: every video of the config's train and test sets."""
    entries = []
    names = self._builder.info.features[LABEL_FEATURE].names
    for subset, code in datasets.SUBSETS.items():
      for video_id, label in self._examples(subset, with_video=False):
        splits = (datasets.UNUSED,) * (self._split_number - 1) + (code,)
        entries.append(datasets.VideoEntry(
            video_id=video_id, path=f"tfds:{self._name}:{video_id}", label=int(label),
            class_name=names[label], splits=splits))
    entries.sort(key=lambda e: e.video_id)
    return datasets.DatasetIndex(self._builder.name, tuple(names), tuple(entries))

  def read(self, video_ids):
    """Yields (video id, `flow_tools.extraction.video.EncodedFrames`) for the given ids, in
    stored order."""
    wanted = set(video_ids)
    for subset in datasets.SUBSETS:
      for video_id, _, frames in self._examples(subset, with_video=True):
        if video_id in wanted:
          yield video_id, video.EncodedFrames(tuple(frames))
