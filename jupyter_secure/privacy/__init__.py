"""Privacy room: differentially private access to protected datasets.

No tornado, jupyter_server or IPython imports. Exact privacy amounts
(:mod:`.amounts`), validated dataset specs (:mod:`.spec`), whitelisted queries
planned and costed with OpenDP before the data is read (:mod:`.queries`), the
ledger that charges them in one locking transaction (:mod:`.ledger`) and the
broker that ties them together (:mod:`.broker`). The HTTP side is
``handlers/private.py``; the notebook side is :mod:`jupyter_secure.private`.
"""

from .amounts import MEASURES as MEASURES
from .amounts import Amount as Amount
from .amounts import AmountError as AmountError
from .spec import DatasetSpec as DatasetSpec
from .spec import SpecError as SpecError
from .spec import parse_spec as parse_spec

__all__ = ["MEASURES", "Amount", "AmountError", "DatasetSpec", "SpecError", "parse_spec"]
