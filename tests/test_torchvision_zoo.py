"""torchvision's networks, given by their builders, prune to half their units.

``DropNetClassifier(module=torchvision.models.NAME)`` on 3 x 32 x 32 images
at ``prune_ratio=0.5``: it fits, predicts, keeps at most 60% of the dense
parameters and survives a joblib round trip. Few samples and one epoch per
round: the point is the structure (functional activations in GoogLeNet,
grouped convolutions in RegNet, concatenations in SqueezeNet, squeeze and
excitation in MobileNetV3). ``benchmarks/bench_zoo.py`` runs them all, with
EfficientNet-B0 and ResNeXt-50 too. A small VisionTransformer and ConvNeXt
(LayerNorm, attention, channels-last blocks) prune the hidden units of their
blocks' MLPs and name every other layer. A small DenseNet prunes the layers it
concatenates before their activation.
"""

import importlib.util
import io
import logging
import sys
import types
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import UnitRemovalWarning

torchvision = pytest.importorskip("torchvision")

_SPEC = importlib.util.spec_from_file_location(
    "bench_zoo", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_zoo.py"
)
bench_zoo = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_zoo)
MODELS, images, prune, refused = bench_zoo.MODELS, bench_zoo.images, bench_zoo.prune, bench_zoo.refused

FAST = ["resnet18", "mobilenet_v3_small", "squeezenet1_0", "googlenet", "regnet_x_400mf"]


@pytest.fixture(scope="module")
def data():
    return images(n=16)


@pytest.fixture(scope="module")
def pruned(data):
    """``pruned(name)``: bench_zoo's result for ``name``, fitted once per test module."""
    results = {}

    def get(name):
        if name not in results:
            results[name] = prune(name, MODELS[name], *data)
        return results[name]

    return get


@pytest.mark.parametrize("name", FAST)
def test_a_torchvision_builder_prunes_to_half_its_units(data, pruned, name):
    X, y = data
    result = pruned(name)
    assert result["units"][1] == result["units"][0] // 2
    assert result["params"] <= 0.6
    assert result["macs"] <= 0.6
    assert result["predicts"] and result["joblib"]
    clf = result["estimator"]
    assert clf.module_.__class__.__module__.startswith("torchvision.models")
    assert clf.predict_proba(X[:3]).shape == (3, 10)


def test_the_layers_mobilenet_leaves_unpruned_are_named(pruned):
    # Its blocks end in a projection without activation (a linear bottleneck).
    clf = pruned("mobilenet_v3_small")["estimator"]
    assert len(clf.unpruned_layers_) == 11
    assert all("reaches no activation" in reason for reason in clf.unpruned_layers_.values())
    assert all(name.startswith("features.") and name.endswith(".0") for name in clf.unpruned_layers_)


def test_regnet_keeps_its_channel_groups_equal(pruned):
    clf = pruned("regnet_x_400mf")["estimator"]
    grouped = [m for m in clf.module_.modules() if getattr(m, "groups", 1) > 1]
    assert grouped and all(m.out_channels % m.groups == 0 and m.in_channels % m.groups == 0 for m in grouped)
    assert not clf.unpruned_layers_


def test_shufflenet_is_refused_naming_its_channel_shuffle(data):
    message = refused("shufflenet_v2_x0_5", *data)
    assert message is not None
    assert "the module 'stage2.0' shuffles channels" in message
    assert "ShuffleNet's channel_shuffle" in message


def tiny_vit(num_classes=10):
    return torchvision.models.VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=num_classes
    )


def tiny_convnext(num_classes=10):
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    return ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=num_classes)


def _halved_with_warnings(builder, X, y):
    """The estimator fitted to half the units of ``builder``'s network, one epoch a round,
    warning of the layers it leaves out; and the units per layer before and after."""
    clf = DropNetClassifier(module=builder, prune_ratio=0.5, max_epochs=1, batch_size=16,
                            validation_fraction=0.0, random_state=0)  # fmt: skip
    with pytest.warns(UnitRemovalWarning):
        clf.fit(X, y)
    return clf, clf.pruning_history_[0]["units_per_layer"], clf.pruning_history_[-1]["units_per_layer"]


@pytest.mark.parametrize(
    ("builder", "hidden", "named"),
    [
        (tiny_vit, ["encoder.layers.encoder_layer_0.mlp.0", "encoder.layers.encoder_layer_1.mlp.0"],
         {"conv_proj": "a concatenation ('<root>: cat') that joins it along another dimension than its channels",
          "encoder.layers.encoder_layer_0.mlp.3": "LayerNorm mixes the channels",
          "encoder.layers.encoder_layer_0.self_attention.out_proj": "nn.MultiheadAttention, uses its weights"}),
        # The depthwise convolution's channels go last through a Permute module, into a LayerNorm.
        (tiny_convnext, ["features.1.0.block.3", "features.3.0.block.3"],
         {"features.0.0": "LayerNorm2d mixes the channels",
          "features.1.0.block.0": "goes into LayerNorm ('features.1.0.block.2') first (LayerNorm mixes the channels)"}),
    ],
    ids=["VisionTransformer", "ConvNeXt"],
)
def test_transformer_style_blocks_prune_their_mlp_and_name_the_rest(data, builder, hidden, named):
    """LayerNorm, attention and channels-last blocks: the hidden units of each block's
    MLP (Linear -> GELU) are what DropNet can remove; every other layer is named."""
    X, y = data
    clf, first, last = _halved_with_warnings(builder, X, y)
    assert sorted(first) == hidden and last == {name: size // 2 for name, size in first.items()}
    for layer, reason in named.items():
        assert reason in clf.unpruned_layers_[layer]
    assert clf.predict_proba(X[:3]).shape == (3, 10)


def tiny_maxvit(num_classes=10):
    from torchvision.models.maxvit import MaxVit

    return MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[16], block_layers=[1],
                  head_dim=8, stochastic_depth_prob=0.0, num_classes=num_classes)  # fmt: skip


def test_maxvit_prunes_its_convolutions_and_mlps_and_names_its_attention(data):
    """MaxViT's attention sent Torch-Pruning round a cycle of its graph for minutes
    while DropNet asked which layers its query-key-value layer feeds; the block's
    MBConv, squeeze-excitation and MLP units are pruned, the attention is named."""
    X, y = data
    clf, first, last = _halved_with_warnings(tiny_maxvit, X, y)
    block = "blocks.0.layers.0.layers."
    assert sorted(first) == sorted(
        ["stem.0.0", "classifier.3", f"{block}MBconv.layers.conv_a.0", f"{block}MBconv.layers.squeeze_excitation.fc1",
         f"{block}window_attention.mlp_layer.1", f"{block}grid_attention.mlp_layer.1"]
    )  # fmt: skip
    assert sum(last.values()) == sum(first.values()) // 2
    for attention in ("window_attention", "grid_attention"):
        assert "goes into a split" in clf.unpruned_layers_[f"{block}{attention}.attn_layer.1.to_qkv"]
        assert "LayerNorm mixes the channels" in clf.unpruned_layers_[f"{block}{attention}.attn_layer.1.merge"]
    assert clf.predict_proba(X[:3]).shape == (3, 10)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0"])
def test_trained_squeeze_and_excitation_networks_pass_the_removal_check_in_every_group(name):
    # BatchNorm statistics and shifts as training leaves them: the removal check then sees
    # what an untrained network hides (a squeeze-and-excitation gate at 1 x 1 positions
    # taken for a gated linear unit; coupled projections left at their shift).
    import warnings

    import torch
    from removal_checks import randomise_batchnorm

    from sklearn_dropnet.pruning import DropNetPruner

    torch.manual_seed(0)
    net = randomise_batchnorm(getattr(torchvision.models, name)(num_classes=10)).eval()
    x = torch.rand(16, 3, 32, 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruner = DropNetPruner(net, x[:2])
        pruner.check_removal(x)
    assert not [str(w.message) for w in caught if "does not match switching them off" in str(w.message)]
    assert len(pruner.units) == {"mobilenet_v3_small": 22, "efficientnet_b0": 33}[name]


def tiny_densenet(num_classes=10):
    return torchvision.models.DenseNet(
        growth_rate=8, block_config=(2, 2), num_init_features=8, bn_size=2, num_classes=num_classes
    )


DENSE_LAYERS = [
    "features.denseblock1.denselayer1.conv2", "features.denseblock1.denselayer2.conv2", "features.transition1.conv",
    "features.denseblock2.denselayer1.conv2", "features.denseblock2.denselayer2.conv2",
]  # fmt: skip


def test_densenet_prunes_the_layers_it_concatenates_before_their_activation(data):
    """Growth and transition convolutions reach their ReLU only through the
    concatenations of the later layers: each is read there, and every layer halves."""
    X, y = data
    clf = DropNetClassifier(module=tiny_densenet, prune_ratio=0.5, max_epochs=1, batch_size=16,
                            validation_fraction=0.0, random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnitRemovalWarning)  # no layer is left unpruned
        clf.fit(X, y)
    first, last = clf.pruning_history_[0], clf.pruning_history_[-1]
    assert set(DENSE_LAYERS) <= set(first["units_per_layer"]) and not clf.unpruned_layers_
    assert last["units"] == first["units"] // 2
    assert last["params"] / first["params"] <= 0.35
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X[:4]), clf.predict_proba(X[:4]))


def test_removing_densenet_units_matches_switching_them_off_at_every_reading():
    import torch
    from removal_checks import assert_removal_matches_masking, randomise_batchnorm

    from sklearn_dropnet.pruning._probes import inspect_network

    torch.manual_seed(0)
    net, x = randomise_batchnorm(tiny_densenet()).eval(), torch.randn(4, 3, 32, 32)  # BatchNorm shifts as trained
    # The stem is scored at its own ReLU, and switched off there and after the BatchNorm
    # of each later layer of its block, which would turn its zero into their shift.
    stem = inspect_network(net, x[:2]).probes["features.conv0"]
    assert [reading.activation.name for reading in stem.scored_readings] == ["features.relu0"]
    assert [(reading.chain_end.name, reading.offset) for reading in stem.more] == [
        ("features.denseblock1.denselayer1.norm1", 0), ("features.denseblock1.denselayer2.norm1", 0),
        ("features.transition1.norm", 0),
    ]  # fmt: skip
    assert_removal_matches_masking(net, x, {
        "features.denseblock1.denselayer1.conv2": [1, 5], "features.transition1.conv": [0, 7],
        "features.denseblock2.denselayer2.conv2": [3], "features.conv0": [2, 6],
    })  # fmt: skip
    assert [net.get_submodule(name).out_channels for name in DENSE_LAYERS] == [6, 8, 10, 8, 7]
    assert net.features.conv0.out_channels == 6


def test_bench_zoo_timm_without_timm_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    with pytest.raises(SystemExit, match=r"--timm needs timm: pip install timm"):
        bench_zoo.main(["--timm", "efficientnet_b0"])
    assert capsys.readouterr().out == ""  # before the table's header


_BUILT = []


def _create_model(model_name, **kwargs):
    """timm.create_model's signature: a name, the network's arguments in ``**kwargs``."""
    _BUILT.append((model_name, kwargs))
    return getattr(torchvision.models, model_name)(**kwargs)


def test_bench_zoo_builds_a_timm_network_with_create_model_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=_create_model))
    _BUILT.clear()
    result = bench_zoo.prune("resnet18", {}, *images(n=16), library="timm")
    assert _BUILT == [("resnet18", {"num_classes": 10})]
    assert result["units"][1] == result["units"][0] // 2 and result["joblib"]


def test_bench_zoo_ultralytics_without_ultralytics_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(SystemExit, match=r"--ultralytics needs ultralytics: pip install ultralytics"):
        bench_zoo.main(["--ultralytics", "yolov8n-cls"])
    assert capsys.readouterr().out == ""


class _ClassificationModel(torch.nn.Module):
    """ultralytics' ClassificationModel's interface: built from a model file's name and
    the number of classes; in eval mode it returns the probabilities and the logits."""

    def __init__(self, cfg, nc, verbose=True):
        super().__init__()
        _BUILT.append((cfg, nc))
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.SiLU())
        self.linear = torch.nn.Linear(8, nc)

    def forward(self, x):
        logits = self.linear(self.features(x).mean(dim=(2, 3)))
        return logits if self.training else (logits.softmax(1), logits)


def test_bench_zoo_builds_a_yolo_classifier_from_its_model_file_returning_the_logits(monkeypatch):
    fake = {
        "ultralytics": types.SimpleNamespace(),
        "ultralytics.nn": types.SimpleNamespace(),
        "ultralytics.nn.tasks": types.SimpleNamespace(ClassificationModel=_ClassificationModel),
        "ultralytics.utils": types.SimpleNamespace(LOGGER=logging.getLogger("ultralytics-stand-in")),
    }
    for name, module in {**fake, "bench_zoo": bench_zoo}.items():  # bench_zoo: for joblib to find the wrapper
        monkeypatch.setitem(sys.modules, name, module)
    _BUILT.clear()
    result = bench_zoo.prune("yolov8n-cls", {}, *images(n=16), library="ultralytics")
    assert _BUILT[0] == ("yolov8n-cls.yaml", 10)
    assert result["units"] == (8, 4) and result["joblib"]
    net = result["estimator"].module_.eval()
    assert isinstance(net, bench_zoo.YoloClassifier) and net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
