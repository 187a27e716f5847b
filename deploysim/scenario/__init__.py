"""Scenario files: their structure (schema) and the one place they are read and validated (loader)."""

from .loader import ScenarioError, load_scenario, scenario_from_dict
from .schema import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario", "scenario_from_dict"]
