"""Privacy room: differentially private access to protected datasets (issue 7, in progress).

Pure: no tornado, jupyter_server or IPython imports. Built so far: exact privacy
amounts (:mod:`.amounts`), validated dataset specs (:mod:`.spec`) and whitelisted
queries planned and costed with OpenDP before the data is read (:mod:`.queries`);
the ledger, the broker and the notebook client build on them.
"""

from .amounts import MEASURES as MEASURES
from .amounts import Amount as Amount
from .amounts import AmountError as AmountError
from .spec import DatasetSpec as DatasetSpec
from .spec import SpecError as SpecError
from .spec import parse_spec as parse_spec

__all__ = ["MEASURES", "Amount", "AmountError", "DatasetSpec", "SpecError", "parse_spec"]
