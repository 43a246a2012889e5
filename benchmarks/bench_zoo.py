"""DropNet on torchvision's (or timm's) networks, built by their builders: how much each shrinks.

Each network is given as ``DropNetClassifier(module=torchvision.models.NAME)``
(its builder function; ``num_classes`` comes from the data), trained for
one epoch per round on random 3 x 32 x 32 images of 10 classes and pruned
to ``prune_ratio=0.5``. The point is the structure, not the accuracy: every
network must fit, predict, come out physically smaller and survive a joblib
round trip. ShuffleNet V2 must be refused with a PruningError naming its
channel shuffle.

With ``--timm``, the networks are timm's, given as
``DropNetClassifier(module=timm.create_model, module__model_name=NAME)``
(``pip install timm``; its networks normalise and activate in one module,
``BatchNormAct2d``). With ``--ultralytics``, they are ultralytics' YOLO
classifiers (``pip install ultralytics``), built from their model files by
:class:`YoloClassifier`, which returns the logits.

Prints, per network: units before and after, the fraction of parameters
and of multiply-accumulates left, the layers left unpruned and the seconds
the fit took. Run from the repository root::

    python benchmarks/bench_zoo.py [--samples N] [--timm | --ultralytics] [NAME ...]
"""

import argparse
import io
import time
import warnings

import joblib
import numpy as np
import torch

from sklearn_dropnet import DropNetClassifier
from sklearn_dropnet.exceptions import PruningError, UnitRemovalWarning

# name -> the builder's own arguments (GoogLeNet's auxiliary heads return a
# tuple in training, which a classifier's loss cannot take).
MODELS = {
    "resnet18": {},
    "mobilenet_v3_small": {},
    "efficientnet_b0": {},
    "squeezenet1_0": {},
    "googlenet": {"aux_logits": False, "init_weights": True},
    "regnet_x_400mf": {},
    "resnext50_32x4d": {},
    "densenet121": {},
}
REFUSED = {"shufflenet_v2_x0_5": "shuffles channels"}

# timm's networks, by name: one of each family's ways of writing its blocks.
TIMM_MODELS = [
    "resnet18", "efficientnet_b0", "mobilenetv3_small_100", "mobilenetv2_100", "regnetx_002",
    "regnety_002", "rexnet_100", "dla34", "cspresnet50", "ese_vovnet19b_dw", "lcnet_050",
    "mnasnet_100", "repvgg_a0", "resnext26ts", "ghostnet_100", "mixnet_s", "convnext_atto",
]  # fmt: skip


# ultralytics' YOLO classifiers, by their model files: C2f blocks (YOLOv8), C3k2 and
# a position-sensitive attention block (YOLO11).
ULTRALYTICS_MODELS = ["yolov8n-cls", "yolo11n-cls"]


class YoloClassifier(torch.nn.Module):
    """ultralytics' ``ClassificationModel`` built from the model file ``model_name``.yaml,
    returning the logits (in eval mode its head returns probabilities and logits)."""

    def __init__(self, model_name, num_classes):
        super().__init__()
        from ultralytics.nn.tasks import ClassificationModel
        from ultralytics.utils import LOGGER

        LOGGER.setLevel("WARNING")  # it says that it overrides the file's number of classes
        self.model = ClassificationModel(f"{model_name}.yaml", nc=num_classes, verbose=False)

    def forward(self, x):
        out = self.model(x)
        return out[1] if isinstance(out, tuple) else out


def ultralytics_builder(name, builder_params):
    """:class:`YoloClassifier` with ``model_name=name``, and the estimator's ``module__*`` parameters."""
    _ultralytics()
    return YoloClassifier, {"model_name": name, **builder_params}


def torchvision_builder(name, builder_params):
    """``torchvision.models.<name>``, and the estimator's ``module__*`` parameters."""
    import torchvision

    return getattr(torchvision.models, name), builder_params


def _timm():
    try:
        import timm
    except ImportError:
        raise SystemExit("--timm needs timm: pip install timm") from None
    return timm


def _ultralytics():
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        raise SystemExit("--ultralytics needs ultralytics: pip install ultralytics") from None


def timm_builder(name, builder_params):
    """``timm.create_model`` with ``model_name=name``, and the estimator's ``module__*`` parameters."""
    return _timm().create_model, {"model_name": name, **builder_params}


# library -> (builder of a network by name, the names run by default, the builders'
# own arguments by name, the names refused and what their PruningError names)
LIBRARIES = {
    "torchvision": (torchvision_builder, [*MODELS, *REFUSED], MODELS, REFUSED),
    "timm": (timm_builder, TIMM_MODELS, {}, {}),
    "ultralytics": (ultralytics_builder, ULTRALYTICS_MODELS, {}, {}),
}
REQUIRED = {"timm": _timm, "ultralytics": _ultralytics}  # library -> what checks it is installed


def images(n=64, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 32, 32)).astype(np.float32), np.arange(n) % n_classes


def prune(name, builder_params, X, y, prune_ratio=0.5, seed=0, library="torchvision"):
    """Fit the network ``name`` of ``library`` pruned to ``prune_ratio``; a dict of what it shows."""
    builder, builder_params = LIBRARIES[library][0](name, builder_params)
    clf = DropNetClassifier(
        module=builder,
        prune_ratio=prune_ratio,
        max_epochs=1,
        batch_size=16,
        validation_fraction=0.0,
        random_state=seed,
        **{f"module__{key}": value for key, value in builder_params.items()},
    )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnitRemovalWarning)
        clf.fit(X, y)
    seconds = time.perf_counter() - start
    dense, pruned = clf.pruning_history_[0], clf.pruning_history_[-1]
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    same = np.array_equal(loaded.predict_proba(X[:8]), clf.predict_proba(X[:8]))
    return {
        "model": name,
        "units": (dense["units"], pruned["units"]),
        "params": pruned["params"] / dense["params"],
        "macs": pruned["macs"] / dense["macs"],
        "unpruned": len(clf.unpruned_layers_),
        "warnings": sum(w.category is UnitRemovalWarning for w in caught),
        "rounds": len(clf.pruning_history_) - 1,
        "joblib": same,
        "predicts": clf.predict(X[:4]).shape == (4,),
        "seconds": seconds,
        "estimator": clf,
    }


def refused(name, X, y):
    """The PruningError's message for ``torchvision.models.<name>``, or None if it fits."""
    try:
        prune(name, {}, X, y)
    except PruningError as error:
        return str(error)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="model names (all of this script's by default)")
    parser.add_argument("--samples", type=int, default=64, help="random training images (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--timm", action="store_const", const="timm", default="torchvision", dest="library",
                        help="timm's networks (timm.create_model) instead of torchvision's")
    parser.add_argument("--ultralytics", action="store_const", const="ultralytics", dest="library",
                        help="ultralytics' YOLO classifiers instead of torchvision's")
    args = parser.parse_args(argv)
    REQUIRED.get(args.library, lambda: None)()  # before the table's header
    torch.set_num_threads(args.threads)
    X, y = images(args.samples)
    _, default_names, builder_params, refused_names = LIBRARIES[args.library]
    names = args.names or default_names
    print(f"{'model':<20} {'units':>13} {'params':>7} {'MACs':>7} {'unpruned':>8} {'rounds':>6} "
          f"{'joblib':>6} {'seconds':>8}")
    for name in names:
        if name in refused_names:
            message = refused(name, X, y)
            ok = message is not None and refused_names[name] in message
            print(f"{name:<20} PruningError {'naming' if ok else 'NOT naming'} the channel shuffle: {message}")
            continue
        r = prune(name, builder_params.get(name, {}), X, y, library=args.library)
        print(
            f"{name:<20} {r['units'][0]:>6}->{r['units'][1]:<6} {r['params']:>7.3f} {r['macs']:>7.3f} "
            f"{r['unpruned']:>8} {r['rounds']:>6} {str(r['joblib']):>6} {r['seconds']:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
