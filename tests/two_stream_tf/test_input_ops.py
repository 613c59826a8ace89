"""The input's building blocks on tiny tensors against numpy: which fields a stack takes,
trajectories, flips, mean subtraction, dequantisation, crop-window decoding, packing.

Milliseconds each, no records: the fast tier (`python -m pytest -m "not slow"`)."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.two_stream_tf import reference
from two_stream_tf.data import decoding
from two_stream_tf.data import packed
from two_stream_tf.data import stacking

_DIRECTION = {stacking.FORWARD: "forward", stacking.BACKWARD: "backward"}


@pytest.mark.parametrize("kind", ["flow", "bidirectional"])
@pytest.mark.parametrize("num_fields", [1, 3, 12])
def test_a_stack_takes_the_papers_fields_with_edge_padding(kind, num_fields):
  for start in range(num_fields):
    ours = [(_DIRECTION[d], int(i)) for d, i in
            stacking.field_sources(kind, 4, tf.constant(start), num_fields)]
    assert ours == reference.field_order(kind, 4, start, num_fields), start


@pytest.mark.parametrize("kind, num_fields, expected", [
    ("flow", 12, (0, 8)), ("flow", 3, (0, 0)), ("trajectory", 10, (0, 6)),
    ("bidirectional", 12, (2, 10)), ("bidirectional", 3, (1, 1))])
def test_start_ranges_by_hand(kind, num_fields, expected):
  first, last = stacking.start_range(kind, 4, num_fields)
  assert (int(first), int(last)) == expected


def test_trajectory_stacking_follows_the_flow_like_scipy():
  rng = np.random.default_rng(0)
  fields = rng.uniform(-2, 2, (3, 7, 9, 2)).astype(np.float32)
  ours = stacking.trajectory_stack(tf.constant(fields), (0, 0, 7, 9))
  np.testing.assert_allclose(ours.numpy(), reference.trajectory_stack(fields), atol=1e-5)


def test_a_flip_mirrors_and_negates_every_x_and_mean_subtraction_is_per_channel():
  stack = np.random.default_rng(1).normal(size=(4, 5, 6)).astype(np.float32)
  np.testing.assert_array_equal(stacking.flip_flow(tf.constant(stack)).numpy(),
                                reference.flip(stack, True))
  np.testing.assert_allclose(stacking.subtract_mean_flow(tf.constant(stack)).numpy(),
                             reference.mean_subtracted(stack), atol=1e-6)


@pytest.mark.parametrize("flip", [False, True])
def test_dequantisation_maps_invert_quantisation_and_flip_x(flip):
  rng = np.random.default_rng(2)
  q = rng.integers(0, 256, (5, 6, 4)).astype(np.uint8)  # h x w x 2L, L = 2
  lo = np.float32([-3.0, -1.0, -7.5, -0.5])
  hi = np.float32([2.0, 4.0, 0.5, 0.25])
  step, centre = decoding.quantization_maps(tf.constant(lo), tf.constant(hi), tf.constant(flip))
  ours = decoding.dequantize(tf.constant(q), step, centre).numpy()
  # (q - 127.5)(hi - lo)/255 + (hi + lo)/2, the inverse of either scheme; x negated if flipped.
  expected = (q.astype(np.float32) - 127.5) * (hi - lo) / 255 + (hi + lo) / 2
  if flip:
    expected[..., 0::2] *= -1
  np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)
  centred = decoding.dequantize(tf.constant(q), step, centre, tf.constant(True)).numpy()
  np.testing.assert_allclose(centred, reference.mean_subtracted(expected), atol=1e-5)


def test_decoding_a_window_is_cropping_the_decoded_frame():
  image = np.random.default_rng(3).integers(0, 256, (32, 48), np.uint8)
  jpeg = cv2.imencode(".jpg", image)[1].tobytes()
  full = tf.io.decode_jpeg(jpeg, channels=1).numpy()[..., 0]
  planes = decoding.decode_planes(tf.constant([jpeg, jpeg]), (8, 16, 16, 24))
  assert planes.shape == (2, 16, 24)
  np.testing.assert_array_equal(planes.numpy()[1], full[8:24, 16:40])
  np.testing.assert_array_equal(decoding.channels_last(planes).numpy(),
                                np.moveaxis(planes.numpy(), 0, -1))


def test_packed_samples_become_the_network_input_numpy_makes_of_them():
  rng = np.random.default_rng(4)
  planes = rng.integers(0, 256, (2, 4, 5, 6)).astype(np.uint8)  # B x 2L x h x w
  lo, hi = np.float32([-2, -1, -3, -1]), np.float32([1, 3, 2, 0.5])
  flips = [False, True]
  maps = [decoding.quantization_maps(tf.constant(lo), tf.constant(hi), tf.constant(f))
          for f in flips]
  batch = {packed.QUANTIZED_FLOW: tf.constant(planes),
           "step": tf.stack([m[0] for m in maps]), "centre": tf.stack([m[1] for m in maps]),
           "subtract_mean": tf.constant([False, False]), "flip": tf.constant(flips)}
  ours = packed.to_network_input(batch).numpy()
  for b, flipped in enumerate(flips):
    flow = (np.moveaxis(planes[b], 0, -1).astype(np.float32) - 127.5) * (hi - lo) / 255
    flow += (hi + lo) / 2
    np.testing.assert_allclose(ours[b], reference.flip(flow, True) if flipped else flow,
                               atol=1e-5)
  rgb = rng.integers(0, 256, (2, 3, 4, 3)).astype(np.uint8)
  alpha = np.float32([[0, 0, 0], [0.1, -0.2, 0.05]])
  out = packed.to_network_input({packed.RGB: tf.constant(rgb), "flip": tf.constant(flips),
                                 "jitter": tf.constant(alpha)}).numpy()
  np.testing.assert_array_equal(out[0], rgb[0].astype(np.float32))
  # AlexNet's PCA jitter: eigenvectors @ (alpha * eigenvalues), on the 0..255 scale.
  offset = np.float32([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]]) @ (alpha[1] * [0.2175, 0.0188, 0.0045])
  np.testing.assert_allclose(out[1], np.clip(rgb[1, :, ::-1] + offset * 255, 0, 255),
                             atol=1e-3)
