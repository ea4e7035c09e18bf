"""netspec: declarative network specs for PyTorch.

    spec = netspec.load("specs/lenet5.yaml")   # validate (positioned errors)
    report = netspec.check(spec)               # shapes, params, MACs, receptive fields

Importing netspec, `load` and `check` never imports torch.
"""

from netspec.api import check, diagnose, load
from netspec.errors import Diagnostic, SpecError
from netspec.report import Report
from netspec.spec.document import Spec

__all__ = ["Diagnostic", "Report", "Spec", "SpecError", "check", "diagnose", "load"]
__version__ = "0.1.0"
