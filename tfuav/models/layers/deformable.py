"""Deformable depthwise 3x3 convolution: each of the nine taps samples the input at a learned
fractional offset from its regular position (bilinear interpolation, zeros outside the image),
then the per-channel depthwise weights combine the samples.

The offsets (dy, dx per tap, shared by all channels) come from a small 3x3 convolution of the
input, initialised to zero so that the layer starts as a plain depthwise convolution. Sampling
needs FLOOR, which TFLite has in float only: the converter keeps the offset arithmetic in
float (DEQUANTIZE, FLOOR, CAST to int32 indices, GATHER), so a model with this layer converts
to a TFLite model with int8 input and output but float ops inside, which TFLM's integer op set
cannot run.
"""
import numpy as np
import tensorflow as tf

keras = tf.keras


class DeformableDepthwiseConv2D(keras.layers.Layer):
    def __init__(self, kernel_size=3, use_bias=True, depthwise_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

    def build(self, input_shape):
        channels, k = int(input_shape[-1]), self.kernel_size
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel", shape=(k, k, channels, 1),
            initializer=self.depthwise_initializer)
        self.bias = (self.add_weight(name="bias", shape=(channels,), initializer="zeros")
                     if self.use_bias else None)
        self.offset_kernel = self.add_weight(name="offset_kernel",
                                             shape=(k, k, channels, 2 * k * k),
                                             initializer="zeros")
        self.offset_bias = self.add_weight(name="offset_bias", shape=(2 * k * k,),
                                           initializer="zeros")
        super().build(input_shape)

    def sampling_positions(self, x):
        """(rows, cols), each [B, H, W, K*K]: where every tap of every output samples."""
        h, w, k = x.shape[1], x.shape[2], self.kernel_size
        offsets = tf.nn.conv2d(x, self.offset_kernel, strides=1, padding="SAME")
        offsets = tf.reshape(offsets + self.offset_bias, (-1, h, w, k * k, 2))
        taps = np.arange(k, dtype=np.float32) - (k - 1) / 2
        tap_rows = np.repeat(taps, k)              # tap t = ky * k + kx, like the kernel
        tap_cols = np.tile(taps, k)
        rows = np.arange(h, dtype=np.float32)[:, None, None] + tap_rows
        cols = np.arange(w, dtype=np.float32)[None, :, None] + tap_cols
        return rows + offsets[..., 0], cols + offsets[..., 1]

    def call(self, x):
        h, w, c, k2 = x.shape[1], x.shape[2], x.shape[3], self.kernel_size ** 2
        rows, cols = self.sampling_positions(x)
        row0, col0 = tf.floor(rows), tf.floor(cols)
        # One ring of zeros around the input: every position outside the image is clipped
        # onto the ring, so it reads 0 without a validity mask.
        padded = tf.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        flat = tf.reshape(padded, (-1, (h + 2) * (w + 2), c))
        samples = 0.0
        for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
            r, q = row0 + dr, col0 + dc
            weight = (1.0 - tf.abs(rows - r)) * (1.0 - tf.abs(cols - q))
            index = tf.cast(tf.clip_by_value(r + 1, 0, h + 1) * (w + 2)
                            + tf.clip_by_value(q + 1, 0, w + 1), tf.int32)
            values = tf.gather(flat, tf.reshape(index, (-1, h * w * k2)), batch_dims=1)
            samples = samples + tf.reshape(values, (-1, h, w, k2, c)) * weight[..., None]
        kernel = tf.reshape(self.depthwise_kernel, (k2, c))
        out = tf.reduce_sum(samples * kernel, axis=3)
        return out + self.bias if self.bias is not None else out

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, use_bias=self.use_bias,
                      depthwise_initializer=keras.initializers.serialize(
                          self.depthwise_initializer))
        return config
