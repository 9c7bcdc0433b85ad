"""Raw exports: CSV (every value at full precision) and COMTRADE (IEEE C37.111-1999/2013, ASCII).

Every export is priced first (`wams.historian.budget.check_export`) and read in time slices, so a
file of any allowed size is written in bounded memory. Callers check access (e.g.
`wams.grid.services.visible_pmus`) before passing PMU ids.
"""

from wams.historian.export.comtrade import ComtradeRecord, comtrade_files, export_comtrade, iter_zip
from wams.historian.export.csvfile import export_csv, iter_csv
from wams.historian.export.slices import ExportPlan, plan_export

__all__ = [
    "ComtradeRecord",
    "ExportPlan",
    "comtrade_files",
    "export_comtrade",
    "export_csv",
    "iter_csv",
    "iter_zip",
    "plan_export",
]
