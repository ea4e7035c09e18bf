"""netspec: declarative network specs for PyTorch.

    spec = netspec.load("specs/lenet5.yaml")   # validate (positioned errors)
    report = netspec.check(spec)               # shapes, params, MACs, receptive fields
    model = netspec.build(spec, seed=0)        # a torch.fx.GraphModule

Importing netspec, `load` and `check` never imports torch; `build` does.
"""

from netspec.api import build, check, diagnose, draw, fuse, load
from netspec.errors import Diagnostic, SpecError
from netspec.report import Report
from netspec.spec.document import Spec
from netspec.weights import WeightsError, load_weights

__all__ = ["Diagnostic", "Report", "Spec", "SpecError", "WeightsError", "build", "check",
           "diagnose", "draw", "fuse", "load", "load_weights"]
__version__ = "0.1.0"
