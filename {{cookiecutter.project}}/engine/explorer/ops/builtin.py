"""The built-in ops and adapters, registered into ``DEFAULT_REGISTRY``.

Each op declares its parameters once, infers its output without torch, and builds its
module on demand (torch is imported inside ``build_layer``).
"""

from __future__ import annotations

from .registry import DEFAULT_REGISTRY, Infeasible, LayerBuilder, Param, Tensor

ACTIVATION_NAMES = ("relu", "relu6", "gelu", "sigmoid", "tanh", "hardswish", "identity")

register = DEFAULT_REGISTRY.register


def _nn():
    from torch import nn

    return nn


def _modules():
    from . import modules

    return modules


def activation_param(doc: str = "activation applied after the layer") -> Param:
    return Param("activation", "choice", default="identity", choices=ACTIVATION_NAMES, doc=doc)


def _window(length: int, kernel: int, stride: int, padding: int, what: str) -> int:
    """Output length of a sliding window, or ``Infeasible`` when the window does not fit."""
    if length + 2 * padding < kernel:
        raise Infeasible(f"{what} kernel_size {kernel} is longer than the input length {length + 2 * padding}")
    return (length + 2 * padding - kernel) // stride + 1


# ---------------------------------------------------------------- dense and convolution


@register("linear")
class Linear(LayerBuilder):
    doc = "fully connected layer"
    params = (Param("width", "int", gt=0, size=True, doc="output features"), activation_param())
    accepts = ("vector",)

    def infer(self, x, params):
        return Tensor("vector", (params["width"],))

    def build_layer(self, x, params):
        return _modules().with_activation(_nn().Linear(x.shape[0], params["width"]), params["activation"])

    def last_params(self, x, params, output):
        return {**params, "width": output.numel, "activation": "identity"}


class _Conv(LayerBuilder):
    dims = 1
    separable = False
    params = (
        Param("out_channels", "int", gt=0, size=True, doc="output channels"),
        Param("kernel_size", "int", ge=1, doc="square kernel"),
        Param("stride", "int", default=1, ge=1),
        Param("padding", "int", default=0, ge=0, choices=("same",), doc="zero padding, or 'same' (stride 1)"),
        activation_param(),
    )

    def infer(self, x, p):
        k, s, pad = p["kernel_size"], p["stride"], p["padding"]
        if pad == "same":
            if s != 1:
                raise Infeasible(f"{self.name} padding 'same' needs stride 1, got stride {s}")
            return Tensor(x.kind, (p["out_channels"], *x.shape[1:]))
        spatial = tuple(_window(n, k, s, pad, self.name) for n in x.shape[1:])
        return Tensor(x.kind, (p["out_channels"], *spatial))

    def build_layer(self, x, p):
        nn = _nn()
        conv = nn.Conv1d if self.dims == 1 else nn.Conv2d
        c_in, k, s, pad = x.shape[0], p["kernel_size"], p["stride"], p["padding"]
        if self.separable:
            layer = nn.Sequential(conv(c_in, c_in, k, stride=s, padding=pad, groups=c_in),
                                  conv(c_in, p["out_channels"], 1))
        else:
            layer = conv(c_in, p["out_channels"], k, stride=s, padding=pad)
        return _modules().with_activation(layer, p["activation"])

    def last_params(self, x, params, output):
        return {**params, "out_channels": output.shape[0], "activation": "identity"}


@register("conv1d")
class Conv1d(_Conv):
    doc = "1-D convolution over [C, L]"
    accepts = ("channels",)


@register("conv2d")
class Conv2d(_Conv):
    doc = "2-D convolution over [C, H, W]"
    dims = 2
    accepts = ("image",)


@register("dwsep_conv1d")
class DwSepConv1d(_Conv):
    doc = "depthwise-separable 1-D convolution (depthwise k, then pointwise 1)"
    separable = True
    accepts = ("channels",)


@register("dwsep_conv2d")
class DwSepConv2d(_Conv):
    doc = "depthwise-separable 2-D convolution (depthwise k x k, then pointwise 1x1)"
    dims = 2
    separable = True
    accepts = ("image",)


# ---------------------------------------------------------------- pooling


class _Pool(LayerBuilder):
    params = (
        Param("kernel_size", "int", default=2, ge=1),
        Param("stride", "int", default=None, ge=1, doc="defaults to kernel_size"),
    )
    accepts = ("channels", "image")

    def infer(self, x, p):
        k = p["kernel_size"]
        s = p["stride"] or k
        spatial = tuple(_window(n, k, s, 0, self.name) for n in x.shape[1:])
        return Tensor(x.kind, (x.shape[0], *spatial))

    def build_layer(self, x, p):
        nn = _nn()
        two_d = x.kind == "image"
        cls = {"maxpool": (nn.MaxPool1d, nn.MaxPool2d), "avgpool": (nn.AvgPool1d, nn.AvgPool2d)}[self.name][two_d]
        return cls(p["kernel_size"], stride=p["stride"] or p["kernel_size"])


@register("maxpool")
class MaxPool(_Pool):
    doc = "max pooling over the length (or height and width)"


@register("avgpool")
class AvgPool(_Pool):
    doc = "average pooling over the length (or height and width)"


@register("global_avgpool")
class GlobalAvgPool(LayerBuilder):
    doc = "mean over the length / height and width / steps, giving a feature vector"
    accepts = ("channels", "image", "steps")

    def infer(self, x, p):
        return Tensor("vector", (x.shape[-1],) if x.kind == "steps" else (x.shape[0],))

    def build_layer(self, x, p):
        dims = {"channels": (2,), "image": (2, 3), "steps": (1,)}[x.kind]
        return _modules().GlobalAvgPool(dims)


# ---------------------------------------------------------------- shape-preserving


class _Same(LayerBuilder):
    def infer(self, x, p):
        return x


@register("batchnorm")
class BatchNorm(_Same):
    doc = "batch normalisation over channels (features for vectors and sequences)"

    def build_layer(self, x, p):
        nn = _nn()
        if x.kind == "image":
            return nn.BatchNorm2d(x.shape[0])
        if x.kind == "steps":
            return _modules().StepsBatchNorm(x.shape[1])
        return nn.BatchNorm1d(x.shape[0])


@register("layernorm")
class LayerNorm(_Same):
    doc = "layer normalisation over features (vectors, sequences) or the whole sample"

    def build_layer(self, x, p):
        shape = x.shape[-1:] if x.kind in ("vector", "steps") else x.shape
        return _nn().LayerNorm(list(shape))


@register("dropout")
class Dropout(_Same):
    doc = "dropout (training only)"
    params = (Param("p", "float", default=0.5, ge=0, lt=1, doc="drop probability"),)

    def build_layer(self, x, p):
        return _nn().Dropout(p["p"])


@register("activation")
class Activation(_Same):
    doc = "element-wise non-linearity"
    params = (Param("op", "choice", default="relu", choices=ACTIVATION_NAMES),)

    def build_layer(self, x, p):
        return _modules().ACTIVATIONS[p["op"]]()


@register("identity")
class Identity(_Same):
    doc = "no operation (lets the search skip a layer)"

    def build_layer(self, x, p):
        return _nn().Identity()


@register("flatten")
class Flatten(LayerBuilder):
    doc = "flatten any tensor into a feature vector"

    def infer(self, x, p):
        return Tensor("vector", (x.numel,))

    def build_layer(self, x, p):
        return _nn().Flatten()


# ---------------------------------------------------------------- recurrent


class _Recurrent(LayerBuilder):
    params = (
        Param("hidden_size", "int", gt=0, size=True, doc="features per direction"),
        Param("num_layers", "int", default=1, ge=1),
        Param("bidirectional", "bool", default=False),
        Param("dropout", "float", default=0.0, ge=0, lt=1, doc="between stacked layers"),
    )
    accepts = ("steps",)

    def infer(self, x, p):
        return Tensor("steps", (x.shape[0], p["hidden_size"] * (2 if p["bidirectional"] else 1)))

    def build_layer(self, x, p):
        return _modules().Recurrent(self.name, x.shape[1], p["hidden_size"], p["num_layers"], p["bidirectional"],
                                    p["dropout"])

    def last_params(self, x, params, output):
        directions = 2 if params["bidirectional"] else 1
        if output.kind != "vector" or output.numel % directions:
            raise Infeasible(f"last layer {self.name} cannot produce output {list(output.shape)}")
        return {**params, "hidden_size": output.numel // directions}


@register("lstm")
class LSTM(_Recurrent):
    doc = "LSTM over [L, F] steps (returns every step)"


@register("gru")
class GRU(_Recurrent):
    doc = "GRU over [L, F] steps (returns every step)"


# ---------------------------------------------------------------- adapters


class _Adapter(LayerBuilder):
    adapter = True


@register("to_vector", transition=("channels", "vector"))
class ChannelsToVector(_Adapter):
    doc = "flatten [C, L] into [C*L]"

    def infer(self, x, p):
        return Tensor("vector", (x.numel,))

    def build_layer(self, x, p):
        return _nn().Flatten()


DEFAULT_REGISTRY.transitions[("image", "vector")] = "to_vector"


@register("last_step", transition=("steps", "vector"))
class LastStep(_Adapter):
    doc = "keep the last step of [L, F]"

    def infer(self, x, p):
        return Tensor("vector", (x.shape[1],))

    def build_layer(self, x, p):
        return _modules().LastStep()


@register("to_steps", transition=("channels", "steps"))
class ChannelsToSteps(_Adapter):
    doc = "[C, L] -> [L, C] (channels-last sequence for recurrent layers)"

    def infer(self, x, p):
        return Tensor("steps", x.shape[::-1])

    def build_layer(self, x, p):
        return _modules().Transpose()


@register("to_channels", transition=("steps", "channels"))
class StepsToChannels(_Adapter):
    doc = "[L, F] -> [F, L] (channels-first for convolutions)"

    def infer(self, x, p):
        return Tensor("channels", x.shape[::-1])

    def build_layer(self, x, p):
        return _modules().Transpose()


class _Reshape(_Adapter):
    target = ""

    def shape(self, x: Tensor) -> tuple[int, ...]:
        raise NotImplementedError

    def infer(self, x, p):
        return Tensor(self.target, self.shape(x))

    def build_layer(self, x, p):
        return _modules().Reshape(self.shape(x))


@register("vector_to_channels", transition=("vector", "channels"))
class VectorToChannels(_Reshape):
    doc = "[F] -> [1, F] (one channel)"
    target = "channels"

    def shape(self, x):
        return (1, x.shape[0])


@register("vector_to_steps", transition=("vector", "steps"))
class VectorToSteps(_Reshape):
    doc = "[F] -> [F, 1] (F steps of one feature)"
    target = "steps"

    def shape(self, x):
        return (x.shape[0], 1)


@register("image_to_channels", transition=("image", "channels"))
class ImageToChannels(_Reshape):
    doc = "[C, H, W] -> [C, H*W]"
    target = "channels"

    def shape(self, x):
        return (x.shape[0], x.shape[1] * x.shape[2])


@register("channels_to_image", transition=("channels", "image"))
class ChannelsToImage(_Reshape):
    doc = "[C, L] -> [1, C, L] (one-channel image)"
    target = "image"

    def shape(self, x):
        return (1, *x.shape)


@register("reshape")
class ReshapeTo(_Adapter):
    doc = "reshape the last layer's output to the declared output shape (same element count)"
    params = (Param("shape", "int"),)

    def infer(self, x, p):
        return Tensor.of_shape(p["shape"])

    def build_layer(self, x, p):
        return _modules().Reshape(tuple(p["shape"]))
