"""``python -m sat_mir.report +dataset=<name>`` (``sat-mir report``): a static HTML report of a
dataset - counts and every failure with its reason, distributions with the prompts' word bins,
key and meter tables, tags, correlations, and each crop with a player and the prompts training
may draw for it - with a Parquet table beside it."""

from sat_mir.report.data import Problem, ReportData, collect
from sat_mir.report.render import ReportSettings, write_report

__all__ = ["Problem", "ReportData", "ReportSettings", "collect", "write_report"]
