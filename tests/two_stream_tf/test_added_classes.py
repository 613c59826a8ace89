"""Table 2's "adding non-overlapping UCF-101 classes": another dataset's classes trained as
extra classes of a head, tested on the head's own classes only."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from flow_tools import records
from two_stream_tf import data
from two_stream_tf import evaluation
from two_stream_tf import model_dirs
from two_stream_tf import models
from two_stream_tf import training
from two_stream_tf.data import added_classes
from two_stream_tf.data import selection

CROP, STACK = 48, 2

# The official class names (UCF-101's classInd.txt, HMDB-51's folder names): the shipped
# overlap list must read one as the other.
UCF101 = """ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching
BaseballPitch Basketball BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles
BodyWeightSquats Bowling BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth
CleanAndJerk CliffDiving CricketBowling CricketShot CuttingInKitchen Diving Drumming Fencing
FieldHockeyPenalty FloorGymnastics FrisbeeCatch FrontCrawl GolfSwing Haircut Hammering
HammerThrow HandstandPushups HandstandWalking HeadMassage HighJump HorseRace HorseRiding
HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking Knitting LongJump
Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing PlayingCello
PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar PlayingTabla
PlayingViolin PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor
RopeClimbing Rowing SalsaSpin ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving
SoccerJuggling SoccerPenalty StillRings SumoWrestling Surfing Swing TableTennisShot TaiChi
TennisSwing ThrowDiscus TrampolineJumping Typing UnevenBars VolleyballSpiking WalkingWithDog
WallPushups WritingOnBoard YoYo""".split()
HMDB51 = """brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble
drink eat fall_floor fencing flic_flac golf handstand hit hug jump kick kick_ball kiss laugh
pick pour pullup punch push pushup ride_bike ride_horse run shake_hands shoot_ball shoot_bow
shoot_gun sit situp smile smoke somersault stand swing_baseball sword sword_exercise talk
throw turn walk wave""".split()


def test_the_shipped_list_reads_23_official_ucf101_classes_as_hmdb51_classes():
  path = added_classes.OVERLAP_LISTS[("ucf101", "hmdb51")]
  assert (len(UCF101), len(HMDB51)) == (101, 51)
  pairs = [line.split() for line in open(path, encoding="utf-8")
           if line.strip() and not line.startswith("#")]
  assert all(len(pair) == 2 for pair in pairs), pairs
  assert [ucf for ucf, _ in pairs] == added_classes.read_class_list(path)
  assert len({ucf for ucf, _ in pairs}) == 23 and len(UCF101) - 23 == 78
  assert {ucf for ucf, _ in pairs} <= set(UCF101)
  assert {hmdb for _, hmdb in pairs} <= set(HMDB51)


def _overlap_file(tmp_path, names, extra=""):
  path = tmp_path / "overlap.txt"
  path.write_text("# test list\n" + "".join(f"{n}   some_reading  # why\n" for n in names) + extra)
  return str(path)


@pytest.fixture(name="added")
def _added(records_dirs, tmp_path):
  """HMDB-51's head with the synthetic UCF-101 classes but every third one added."""
  ucf_classes = records.read_manifest(records_dirs["ucf101"])["class_names"]
  overlap = _overlap_file(tmp_path, ucf_classes[::3])
  return added_classes.non_overlapping(records_dirs["hmdb51"], records_dirs["ucf101"], overlap)


def test_added_videos_are_labelled_after_the_heads_classes_in_the_added_datasets_order(
    records_dirs, added):
  hmdb = records.read_manifest(records_dirs["hmdb51"])
  ucf = records.read_manifest(records_dirs["ucf101"])
  kept = [c for i, c in enumerate(ucf["class_names"]) if i % 3]
  assert added.class_names == tuple(kept) and added.head == "hmdb51"
  sources = selection.open_sources([records_dirs["hmdb51"]], [added])
  assert selection.head_names(sources) == ["hmdb51"]
  assert selection.head_sizes(sources) == [len(hmdb["class_names"]) + len(kept)]
  own, extra = [s.select(1, "train") for s in sources]
  assert own == {v: i["label"] for v, i in hmdb["videos"].items() if i["splits"][0] == 1}
  expected = {v: len(hmdb["class_names"]) + kept.index(ucf["class_names"][i["label"]])
              for v, i in ucf["videos"].items()
              if i["splits"][0] == 1 and i["label"] % 3}
  assert extra == expected and expected

  weights = selection.balanced_weights(sources, [own, extra])
  assert len(weights) == 1 and len(weights[0]) == 12 + len(kept)
  counts = np.bincount(list(own.values()) + list(extra.values()), minlength=12 + len(kept))
  # every class gets the same expected samples per pass, and a pass is as long as the videos
  np.testing.assert_allclose(counts * weights[0], counts.sum() / len(counts), rtol=1e-6)

  batches = data.training_dataset([records_dirs["hmdb51"]], 1, data.InputConfig(
      stream="spatial", crop_size=CROP), 32, seed=0, added=[added])
  labels = np.concatenate([y["hmdb51"].numpy() for _, y, _ in batches.take(6)])
  assert labels.min() >= 0 and labels.max() < 12 + len(kept)
  assert (labels >= 12).sum() > 0 and (labels < 12).sum() > 0


def test_bad_added_classes_are_refused_naming_the_cause(records_dirs, tmp_path):
  hmdb, ucf = records_dirs["hmdb51"], records_dirs["ucf101"]
  ucf_classes = records.read_manifest(ucf)["class_names"]
  with pytest.raises(ValueError, match=r"overlap.txt: NoSuchClass not classes of ucf101"):
    added_classes.non_overlapping(hmdb, ucf, _overlap_file(tmp_path, [ucf_classes[0]],
                                                           "NoSuchClass\n"))
  with pytest.raises(ValueError, match="no shipped list of the hmdb51 classes that ucf101 has"):
    added_classes.non_overlapping(ucf, hmdb)
  with pytest.raises(FileNotFoundError, match="cannot read the class list /no/list.txt"):
    added_classes.non_overlapping(hmdb, ucf, "/no/list.txt")
  # records of the same dataset extracted otherwise (only the manifest is read)
  other = tmp_path / "tvl1"
  other.mkdir()
  manifest = records.read_manifest(ucf)
  manifest["config"] = {**manifest["config"], "algorithm": "tvl1"}
  (other / records.MANIFEST).write_text(json.dumps(manifest))
  with pytest.raises(ValueError, match=r"other settings than .*algorithm='tvl1' vs 'dis'"):
    added_classes.non_overlapping(hmdb, str(other), _overlap_file(tmp_path, []))
  unknown = dataclasses.replace(
      added_classes.non_overlapping(hmdb, ucf, _overlap_file(tmp_path, [])),
      class_names=("Nope",))
  with pytest.raises(ValueError, match="ucf101 has no classes"):
    selection.open_sources([hmdb], [unknown])
  with pytest.raises(ValueError, match="not one of the heads"):
    selection.open_sources([ucf], [unknown])


def test_a_run_with_added_classes_trains_them_and_scores_the_heads_own(records_dirs, added,
                                                                      tmp_path):
  temporal = data.InputConfig(stream="temporal", crop_size=CROP, stack_length=STACK)
  spec = model_dirs.RunSpec.of_records([records_dirs["hmdb51"]], 1, temporal,
                                       added_classes=[added], dropout=0.0)
  own = len(spec.heads[0][1])
  assert spec.class_counts == {"hmdb51": own + len(added.class_names)}
  assert model_dirs.RunSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec

  model_dir = str(tmp_path / "model")
  keras.utils.set_random_seed(1)
  config = training.TrainConfig(schedule=training.Schedule(0.01, (), 0.1, 2), batch_size=8,
                                log_every=1, checkpoint_every=2, weight_decay=0.0)
  run = training.RunConfig(
      training.DatasetConfig((records_dirs["hmdb51"],), add_classes_from=records_dirs["ucf101"],
                             overlapping_classes=str(tmp_path / "overlap.txt")),
      temporal, models.ModelConfig(dropout=0.0), train=config,
      source=data.InputSource(shuffle_buffer=16))
  assert training.run_spec(run) == spec
  training.train_stream(model_dir, run)

  # The trained head has every class; the loaded one scores the own classes: the softmax of
  # their logits (computed here from the full network's logits).
  full = model_dirs.build(spec)
  model_dirs.restore(tf.train.Checkpoint(model=full), model_dir, partial=True)
  assert full.get_layer("hmdb51_logits").kernel.shape[-1] == own + len(added.class_names)
  model, loaded, _ = model_dirs.load(model_dir)
  assert loaded == spec
  x = np.random.default_rng(0).uniform(-20, 20, (3, CROP, CROP, 2 * STACK)).astype("float32")
  logits_model = keras.Model(full.input, full.get_layer("hmdb51_logits").output)
  logits = logits_model(x, training=False).numpy()[:, :own].astype(np.float64)
  expected = np.exp(logits - logits.max(axis=1, keepdims=True))
  expected /= expected.sum(axis=1, keepdims=True)
  np.testing.assert_allclose(model(x, training=False)["hmdb51"].numpy(), expected, atol=1e-6)

  report = evaluation.evaluate(model_dir, num_positions=1)
  with np.load(report["scores"]) as saved:
    scores = saved["hmdb51/scores"]
    assert scores.shape[1] == own and list(saved["heads"]) == ["hmdb51"]
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    hmdb = records.read_manifest(records_dirs["hmdb51"])
    assert sorted(saved["hmdb51/video_ids"]) == sorted(
        v for v, i in hmdb["videos"].items() if i["splits"][0] == 2)

  # Resuming with other added classes (or none) is refused, naming them.
  fewer = dataclasses.replace(added, class_names=added.class_names[1:])
  with pytest.raises(model_dirs.RunSpecError,
                     match=f"{len(added.class_names)} ucf101 classes to hmdb51 there, "
                           f"{len(added.class_names) - 1} ucf101 classes to hmdb51 now"):
    model_dirs.check_resumable(model_dir, dataclasses.replace(spec, added_classes=(fewer,)))
  with pytest.raises(model_dirs.RunSpecError, match="hmdb51 there, none now"):
    model_dirs.check_resumable(model_dir, dataclasses.replace(spec, added_classes=()))
  model_dirs.check_resumable(model_dir, dataclasses.replace(
      spec, added_classes=(dataclasses.replace(added, records_dir="/moved/ucf101"),)))
