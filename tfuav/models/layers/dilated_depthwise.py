"""Convolutions with dilation (depthwise, and strided + dilated) that reaches TFLite as a native dilated DEPTHWISE_CONV_2D.

Keras' DepthwiseConv2D(dilation_rate=d) goes through tf.nn.depthwise_conv2d, which wraps the
op in SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND. The converter keeps that lowered form, which is
slower, blocks BatchNorm folding, and is computed differently by TFLM. Calling the native op
directly keeps the dilation factors on the TFLite op itself.
"""
import tensorflow as tf

keras = tf.keras


class DilatedDepthwiseConv2D(keras.layers.Layer):
    def __init__(self, kernel_size=3, strides=1, dilation_rate=1, padding="same",
                 use_bias=True, depthwise_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.padding = padding.lower()
        if self.padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        self.use_bias = use_bias
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.kernel_size
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel", shape=(k, k, channels, 1),
            initializer=self.depthwise_initializer, trainable=True)
        self.bias = (self.add_weight(name="bias", shape=(channels,), initializer="zeros",
                                     trainable=True) if self.use_bias else None)
        super().build(input_shape)

    def call(self, inputs):
        s, d = self.strides, self.dilation_rate
        out = tf.raw_ops.DepthwiseConv2dNative(
            input=inputs, filter=self.depthwise_kernel, strides=[1, s, s, 1],
            padding=self.padding.upper(), dilations=[1, d, d, 1])
        if self.bias is not None:
            out = tf.nn.bias_add(out, self.bias)
        return out

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        eff = (self.kernel_size - 1) * self.dilation_rate + 1

        def size(n):
            if n is None:
                return None
            if self.padding == "same":
                return -(-n // self.strides)
            return (n - eff) // self.strides + 1

        return tf.TensorShape([input_shape[0], size(h), size(w), input_shape[-1]])

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, strides=self.strides,
                      dilation_rate=self.dilation_rate, padding=self.padding,
                      use_bias=self.use_bias,
                      depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer))
        return config


class DilatedConv2D(keras.layers.Layer):
    """3x3 convolution, stride 2, dilation 2, valid padding, with bias (the GlimmerNet stem)."""

    def __init__(self, filters, kernel_size=3, strides=2, dilation_rate=2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel_size)
        self.strides, self.dilation_rate = int(strides), int(dilation_rate)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(name="kernel", shape=(k, k, int(input_shape[-1]), self.filters),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
        super().build(input_shape)

    def call(self, x):
        s, d = self.strides, self.dilation_rate
        out = tf.raw_ops.Conv2D(input=x, filter=self.kernel, strides=[1, s, s, 1],
                                padding="VALID", dilations=[1, d, d, 1])
        return tf.nn.bias_add(out, self.bias)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      dilation_rate=self.dilation_rate)
        return config
