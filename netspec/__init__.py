"""netspec: declarative network specs for PyTorch.

    spec = netspec.load("specs/lenet5.yaml")   # validate (positioned errors)
    report = netspec.check(spec)               # shapes, params, MACs, receptive fields
    netspec.check(spec, params={"classes": 10}) # a parameter set (or scale="n": `scales:`)
    model = netspec.build(spec, seed=0)        # a torch.fx.GraphModule
    result = netspec.train(spec, epochs=20)    # checkpoints, metrics and plots in runs/NAME
    text = netspec.sample("runs/NAME")          # text from a language model trained on text
    netspec.predict(spec, "runs/NAME", ["cat.png"])  # the likeliest classes of images

Importing netspec, `load` and `check` never imports torch; `build`, `train`, `sample` and
`predict` do.
"""

from netspec.api import build, check, check_scales, diagnose, draw, fuse, load, sample, train
from netspec.diff import Diff, DiffError, diff
from netspec.errors import Diagnostic, SpecError, TrainError
from netspec.limits import Limits
from netspec.predict import PredictError, Prediction, predict
from netspec.report import Report
from netspec.spec.document import Spec
from netspec.weights import WeightsError, WeightsReport, load_weights

__all__ = ["Diagnostic", "Diff", "DiffError", "Limits", "PredictError", "Prediction", "Report", "Spec",
           "SpecError", "TrainError", "WeightsError", "WeightsReport", "build", "check", "check_scales",
           "diagnose", "diff", "draw", "fuse", "load", "load_weights", "predict", "sample", "train"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`netspec.summary`, loaded on first use (it imports torch)."""
    if name == "summary":
        from netspec.importer.summary import summary

        return summary
    raise AttributeError(f"module 'netspec' has no attribute {name!r}")
